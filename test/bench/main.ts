/**
 * `npm run bench [-- --smoke] [-- --json file] [-- --only ingest,drain,latency,memory,pieces]`: measures asyncfn against
 * limits measured in the same run (issue 5), prints a table on stdout and writes it as JSON.
 * Progress goes to stderr. Targets are printed, never asserted: the exit code is 0 unless a
 * section failed to run.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { redisServerFound } from './bullmq.js';
import { runDrain } from './drain.js';
import { runIngest, type LimitA } from './ingest.js';
import { runLatency } from './latency.js';
import { runHeld } from './held.js';
import { runMemory } from './memory.js';
import { runPieces } from './pieces.js';
import { planFor } from './plan.js';
import { gatewayDeploymentEnv } from '../helpers/deploy.js';
import { asyncfnNodeFlags, useCompiledAsyncfn } from './processes.js';
import { formatReport, machineInfo, writeReport, type Report, type Row } from './report.js';
import { inScope, progress, startFixtures } from './stack.js';

/** "memory" runs sections 4 and 5: they share the fixtures, and 4b and 5 share one worker process. */
const SECTIONS = ['ingest', 'drain', 'latency', 'memory', 'pieces'] as const;
type Section = (typeof SECTIONS)[number];

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { smoke: { type: 'boolean', default: false }, json: { type: 'string', default: 'bench-results.json' }, only: { type: 'string' } },
  });
  const mode = values.smoke ? 'smoke' : 'full';
  const plan = planFor(mode);
  const only = values.only?.split(',') ?? SECTIONS;
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const rows: Row[] = [];
  let failed = false;
  let limitA: LimitA | undefined;

  // The full run measures asyncfn as it runs in production: compiled, without the TypeScript loader,
  // with its image's node flags (asyncfnNodeFlags).
  if (mode === 'full') useCompiledAsyncfn();

  const sections: Record<Section, () => Promise<Row[]>> = {
    ingest: async () => {
      const result = await runIngest(plan.ingest);
      limitA = result.limitA;
      return result.rows;
    },
    drain: () => runDrain(plan.drain, limitA),
    latency: () => runLatency(plan.latency),
    memory: () =>
      inScope(async (scope) => {
        const { fn, sink } = await startFixtures(scope);
        return [...(await runMemory(plan.memory, fn, sink)), ...(await runHeld(plan.held, fn, sink))];
      }),
    pieces: () => runPieces(plan.pieces),
  };
  for (const name of SECTIONS.filter((s) => only.includes(s))) {
    const sectionStart = performance.now();
    progress(name, 'starting');
    try {
      rows.push(...(await sections[name]()));
      progress(name, `done in ${((performance.now() - sectionStart) / 1000).toFixed(1)} s`);
    } catch (err) {
      failed = true;
      progress(name, `FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }

  const report: Report = {
    mode,
    startedAt,
    durationSeconds: (performance.now() - started) / 1000,
    machine: machineInfo(),
    asyncfnNodeFlags: asyncfnNodeFlags('worker'),
    gatewayNodeFlags: asyncfnNodeFlags('gateway'),
    gatewayMallocArenas: gatewayDeploymentEnv().MALLOC_ARENA_MAX,
    rows,
    // The BullMQ peer runs inside the drain section (same fixtures, same run) when it can.
    skipped: redisServerFound() ? [] : [{ section: '2 BullMQ', reason: 'redis-server is not on this machine (Debian: apt-get install redis-server)' }],
  };
  process.stdout.write(`${formatReport(report)}\n`);
  const jsonPath = resolve(values.json);
  await writeReport(jsonPath, report);
  progress('report', `wrote ${jsonPath}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
