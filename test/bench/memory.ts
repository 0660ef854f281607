/**
 * Section 4a, memory of a worker process (`asyncfn worker` as a child, RSS from /proc) at
 * max_inflight 100 while it drains a backlog; beside it, the RSS of `node --import tsx` running
 * nothing, the loader's share of every figure here. (4b, thousands in flight, is in held.ts.)
 */
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { loaderArgs, readRssBytes, stopChild, type Fixture } from './processes.js';
import { pollUntil } from '../helpers/eventually.js';
import { row, type Row } from './report.js';
import { benchConfig, connectClient, inScope, preload, progress, startNats, startWorkerChild } from './stack.js';
import { MIB } from './stats.js';

export interface MemoryPlan {
  readonly loadInvocations: number;
  readonly loadMaxInflight: number;
}

const SECTION = 'memory';

/** Samples a process's RSS every `everyMs` until stopped; returns the highest seen. */
export function rssSampler(pid: number, everyMs = 100): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await readRssBytes(pid).catch(() => 0));
      await delay(everyMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** RSS of `node --import tsx` with an empty program, read after `settleMs`. */
async function loaderRss(settleMs: number): Promise<number> {
  const child = spawn(process.execPath, [...loaderArgs(), '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await delay(settleMs);
    return await readRssBytes(child.pid!);
  } finally {
    await stopChild(child, 'SIGKILL');
  }
}

export async function runMemory(plan: MemoryPlan, fn: Fixture, sink: Fixture): Promise<Row[]> {
  return inScope(async (scope) => {
    const loader = loaderRss(1_000);
    const nats = await startNats(scope);
    const client = await connectClient(scope, benchConfig(nats.url));
    const worker = await startWorkerChild(scope, client, fn.url, { max_inflight: String(plan.loadMaxInflight) });
    await sink.reset();
    const loaderRssBytes = await loader;
    progress(SECTION, `worker child at max_inflight ${plan.loadMaxInflight}: draining ${plan.loadInvocations} while they are queued`);
    const sampler = rssSampler(worker.pid);
    await preload(client, plan.loadInvocations, sink.url);
    const n = plan.loadInvocations;
    await pollUntil(async () => (await sink.stats()).count >= n, `${n} callbacks`, 30_000 + n * 5);
    const loaded = await sampler.stop();
    const baseline = loaderRssBytes;
    progress(SECTION, `peak RSS under load ${(loaded / MIB).toFixed(1)} MiB (node alone: ${(baseline / MIB).toFixed(1)} MiB)`);
    const s = '4 memory';
    return [
      row('memory.load', s, `worker RSS MiB, max_inflight ${plan.loadMaxInflight} under load (peak)`, loaded / MIB, { target: { max: 100 } }),
      row('memory.loader', s, `RSS MiB of \`${['node', ...loaderArgs()].join(' ')}\` running nothing (included above)`, baseline / MIB),
    ];
  });
}
