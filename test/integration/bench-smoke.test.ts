import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import type { Report } from '../bench/report.js';
import { redisServerFound } from '../bench/bullmq.js';
import { REPO_ROOT } from '../helpers/asyncfn.js';

/**
 * The bench beside this test, as `npm run bench` runs it: compiled, with its asyncfn children run
 * from the bundle it builds. Run from its sources (through tsx), the test runs the bench's sources,
 * and every child then loads tsx too.
 */
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const BENCH = FROM_SOURCES
  ? ['--import', 'tsx', fileURLToPath(new URL('../bench/main.ts', import.meta.url))]
  : [fileURLToPath(new URL('../bench/main.js', import.meta.url))];

/** Every row the bench reports (issue 5); the numbers are not judged here, only that they exist. */
const EXPECTED_ROWS = [
  'ingest.rate',
  'ingest.rate.lowest',
  'ingest.rate.highest',
  'ingest.p50',
  'ingest.p99',
  'ingest.failed',
  'ingest.batch.rate',
  'ingest.limitA.busyCores',
  'ingest.gatewayCpu',
  'ingest.natsCpu',
  'ingest.otherCpu',
  'ingest.floor.cpu',
  'ingest.floor.rate',
  'ingest.floor.p50',
  'ingest.floor.p99',
  'ingest.busyCores',
  'ingest.plain.rate',
  'ingest.vsPlain',
  'ingest.plain.cpu',
  'ingest.plain.natsCpu',
  'ingest.plain.rss',
  'ingest.unfronted.rate',
  'ingest.unfronted.cpu',
  'ingest.rss.idle',
  'ingest.rss.load',
  // gateway_processes=2 runs in full mode only: its three more processes would double the smoke's ingest section.
  'drain.rate',
  'drain.rate.lowest',
  'drain.rate.highest',
  'drain.fairRate',
  'drain.cpuPerInvocation',
  'drain.natsCpuPerInvocation',
  'drain.fixturesCpuPerInvocation',
  'drain.warmCpuPerInvocation',
  'drain.mainThreadCpuPerInvocation',
  'drain.warmMainThreadCpuPerInvocation',
  'drain.warmRate',
  'drain.rss',
  // The plain worker: nats.js and undici as their docs show, no guarantees.
  'drain.vsPlain',
  'plain.cpuPerInvocation',
  'plain.mainThreadCpuPerInvocation',
  'plain.natsCpuPerInvocation',
  'plain.fixturesCpuPerInvocation',
  'plain.rss',
  // The BullMQ peer, when redis-server is on this machine.
  ...(redisServerFound()
    ? [
        'drain.vsBullmq',
        'drain.vsBullmq.lowest',
        'drain.vsBullmq.highest',
        'bullmq.cpuPerJob',
        'bullmq.mainThreadCpuPerJob',
        'bullmq.brokerCpuPerJob',
        'bullmq.fixturesCpuPerJob',
        'bullmq.rss',
        'bullmq.vsPlain',
        'drain.targetVsPlain',
      ]
    : []),
  'drain.concurrent.rate',
  'drain.concurrent.ingest',
  'latency.accept.p50',
  'latency.accept.p99',
  'latency.start.p50',
  'latency.start.p99',
  'latency.callback.p50',
  'latency.callback.p99',
  'memory.load',
  'memory.loader',
  'memory.idle',
  'memory.idle.settled',
  'memory.held',
  'memory.perInvocation',
  'longJobs.cpu',
  'longJobs.cpuPerExtension',
  'longJobs.redelivered',
  'longJobs.extraCalls',
  'longJobs.extraDeliveries',
  'longJobs.extraCallbacks',
  'longJobs.pair.extraCalls',
  'longJobs.pair.extraDeliveries',
  'pieces.envelope.encode',
  'pieces.envelope.block',
  'pieces.envelope.decode',
  'pieces.envelope.read',
  'pieces.metrics.promClient',
  'pieces.metrics.bound',
  'pieces.machine',
  'pieces.machine.rate',
  'pieces.http.parse',
  'pieces.http.request.cpu',
  'pieces.http.exchange.cpu',
  'pieces.http.exchange.rate',
  'pieces.http.own.cpu',
  'pieces.http.own.rate',
  'pieces.http.batched.cpu',
  'pieces.http.batched.rate',
  'pieces.publish.natsjs.rate',
  'pieces.publish.natsjs.cpu',
  'pieces.publish.confirmer.rate',
  'pieces.publish.confirmer.cpu',
  'pieces.ackAck.natsjs.rate',
  'pieces.ackAck.natsjs.cpu',
  'pieces.ackAck.confirmer.rate',
  'pieces.ackAck.confirmer.cpu',
  'pieces.rateLimit.acquire.rate',
  'pieces.rateLimit.acquire.cpu',
];

t.test('the bench in smoke mode prints the table and writes every row with finite numbers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-bench-smoke-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const json = join(dir, 'bench.json');

  const { stdout } = await promisify(execFile)(process.execPath, [...BENCH, '--smoke', '--json', json], {
    cwd: REPO_ROOT,
    // Generous: the gateway, the workers and fixtures are processes of their own, on a machine
    // shared with other test runs.
    timeout: 170_000,
    maxBuffer: 10 * 1024 * 1024,
  });
  t.match(stdout, /^\| section +\| metric +\| value +\| limit +\| ratio +\| target +\| holds +\|$/m, 'the table is printed');
  if (!redisServerFound()) t.match(stdout, /BullMQ: skipped \(redis-server is not on this machine/, 'the BullMQ comparison says why it is skipped');

  const report = JSON.parse(await readFile(json, 'utf8')) as Report;
  t.equal(report.mode, 'smoke');
  t.same(
    report.rows.map((r) => r.id),
    EXPECTED_ROWS,
    'every row, in order',
  );
  for (const r of report.rows) {
    t.ok(Number.isFinite(r.value), `${r.id}: value ${r.value} is finite`);
    if (r.limit !== null) t.ok(Number.isFinite(r.limit) && r.limit > 0, `${r.id}: limit ${r.limit} is finite and positive`);
    if (r.ratio !== null) t.ok(Number.isFinite(r.ratio), `${r.id}: ratio ${r.ratio} is finite`);
    t.equal(r.holds === null, r.target === null, `${r.id}: judged exactly when it has a target`);
  }
  for (const id of ['ingest.rate', 'drain.rate']) {
    t.not(report.rows.find((r) => r.id === id)?.ratio ?? null, null, `${id} has a ratio to its limit`);
  }
  t.ok(report.machine.cpus > 0, 'machine: cpus');
  t.match(report.machine.node, /^v\d+/, 'machine: node version');
  t.match(report.machine.natsServer, /v\d+\.\d+/, 'machine: nats-server version');
  t.match(report.machine.commit, /^[0-9a-f]{7,}$/, 'machine: commit');
});
