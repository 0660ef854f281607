/**
 * Section 2, end to end: invocations queued first, then drained by a worker with max_inflight 100
 * through the function call and the callback; beside it LIMIT-B, direct POSTs to the same function
 * at the same concurrency, and BullMQ's drain of the same jobs (bullmq.ts). The three take turns
 * (`rounds`), each drain by a fresh worker process, with the plain worker's (plain-peer.ts: the
 * job done with nats.js and undici as their documentation shows, no guarantees). Then the same
 * drain on a function's lane, and while the gateway ingests at full speed. The function and the
 * callback sink are processes of their own.
 */
import { Pool } from 'undici';
import { startWorker } from '../../src/worker/index.js';
import { redisServerFound, startBullmqPeer } from './bullmq.js';
import { plainDrain } from './plain-peer.js';
import { medianDrain, type PeerDrain } from './peer-process.js';
import type { LimitA } from './ingest.js';
import { rssSampler } from './memory.js';
import { laneSubject } from '../../src/queue/lanes.js';
import { freePort, readCpuMs, readMainThreadCpuMs, runAutocannon, spawnAsyncfn, type Fixture } from './processes.js';
import { pollUntil } from '../helpers/eventually.js';
import { row, type Row } from './report.js';
import {
  BODY,
  benchConfig,
  benchResolver,
  connectClient,
  FUNCTION_NAME,
  inScope,
  preload,
  progress,
  silentLogger,
  startFixtures,
  startNats,
  startWorkerChild,
  writeFunctionsFile,
} from './stack.js';
import { epochMs, median, MIB, perSecond } from './stats.js';

export interface DrainPlan {
  /** Turns of LIMIT-B, asyncfn's cold drain and BullMQ's; each figure is the median of its turns. */
  readonly rounds: number;
  readonly invocations: number;
  readonly maxInflight: number;
  readonly connections: number;
  readonly concurrentIngestSeconds: number;
}

const SECTION = 'drain';

/** LIMIT-B: `count` POSTs of the 1 KiB body straight to the function, `connections` at a time. */
async function measureLimitB(fn: Fixture, count: number, connections: number): Promise<number> {
  const pool = new Pool(fn.url, { connections });
  try {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < count) {
        next += 1;
        const res = await pool.request({ path: '/', method: 'POST', body: BODY, headers: { 'content-type': 'application/octet-stream' } });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`the function answered ${res.statusCode}`);
      }
    };
    const startedAt = epochMs();
    await Promise.all(Array.from({ length: connections }, lane));
    return perSecond(count, epochMs() - startedAt);
  } finally {
    await pool.close();
  }
}

/** Resolves once the sink has received `n` callbacks; bounded by `timeoutMs`. */
function callbacksReached(sink: Fixture, n: number, timeoutMs: number): Promise<void> {
  return pollUntil(async () => (await sink.stats()).count >= n, `${n} callbacks`, timeoutMs, 20);
}

/** CPU time of the function and callback sink fixture processes together, ms. */
async function fixturesCpuMs(fn: Fixture, sink: Fixture): Promise<number> {
  const [a, b] = await Promise.all([readCpuMs(fn.pid), readCpuMs(sink.pid)]);
  return a + b;
}

/** One cold drain by an asyncfn worker process: its rate, and CPU per invocation (µs) of it, its main thread, nats-server and the fixtures. */
interface DrainTurn {
  readonly rate: number;
  readonly cpuMicros: number;
  readonly mainCpuMicros: number;
  readonly natsCpuMicros: number;
  readonly fixturesCpuMicros: number;
  /** Bytes. */
  readonly peakRss: number;
}

/** Measures the drain of `n` queued invocations by the worker process `workerPid`, from now to the sink's `n`th callback. */
async function measureDrain(workerPid: number, natsPid: number, fn: Fixture, sink: Fixture, n: number, timeoutMs: number): Promise<DrainTurn> {
  const read = () => Promise.all([readCpuMs(workerPid), readMainThreadCpuMs(workerPid), readCpuMs(natsPid), fixturesCpuMs(fn, sink)]);
  const before = await read();
  const sampler = rssSampler(workerPid);
  await callbacksReached(sink, n, timeoutMs);
  const after = await read();
  const peakRss = await sampler.stop();
  const drained = await sink.stats();
  const [cpuMicros, mainCpuMicros, natsCpuMicros, fixturesCpuMicros] = after.map((ms, i) => ((ms - before[i]!) * 1000) / n) as [number, number, number, number];
  return { rate: perSecond(n - 1, drained.lastAtMs - drained.firstAtMs), cpuMicros, mainCpuMicros, natsCpuMicros, fixturesCpuMicros, peakRss };
}

export async function runDrain(plan: DrainPlan, limitA: LimitA | undefined): Promise<Row[]> {
  return inScope(async (scope) => {
    const nats = await startNats(scope);
    const { fn, sink } = await startFixtures(scope);
    const config = benchConfig(nats.url, { worker: { maxInflight: plan.maxInflight } });
    const resolver = benchResolver(fn.url);
    const client = await connectClient(scope, config);
    const n = plan.invocations;
    const drainTimeoutMs = 30_000 + n * 5;

    const bullmqPeer = redisServerFound() ? await startBullmqPeer(scope, fn, sink) : undefined;
    progress(SECTION, `LIMIT-B: ${n} direct POSTs to the function, ${plan.connections} at a time (after a warm-up)`);
    await measureLimitB(fn, Math.ceil(n / 10), plan.connections);

    // LIMIT-B, asyncfn's drain and BullMQ's take turns, each drain by a fresh (cold) worker process:
    // this machine's speed moves within a minute (BENCHMARKS.md, "LIMIT-A and the gateway measured
    // in turns"). The first turn's worker then drains as many again, warm.
    const turns: DrainTurn[] = [];
    const limitBs: number[] = [];
    const peers: PeerDrain[] = [];
    const plains: PeerDrain[] = [];
    let warm: { cpuMicros: number; mainCpuMicros: number; rate: number } | undefined;
    for (let round = 1; round <= plan.rounds; round++) {
      const limitB = await measureLimitB(fn, n, plan.connections);
      limitBs.push(limitB);
      await Promise.all([fn.reset(), sink.reset()]);
      await preload(client, n, sink.url);
      progress(
        SECTION,
        `turn ${round} of ${plan.rounds}: LIMIT-B ${limitB.toFixed(0)} req/s; draining ${n} with max_inflight ${plan.maxInflight} (asyncfn worker process)`,
      );
      // The worker is a process of its own, so its CPU time and RSS are its own; CPU counts from
      // when it pulls, as the BullMQ worker's counts from when it is ready.
      const drainWorker = await startWorkerChild(scope, client, fn.url, { max_inflight: String(plan.maxInflight) });
      const turn = await measureDrain(drainWorker.pid, nats.pid, fn, sink, n, drainTimeoutMs);
      turns.push(turn);
      const calls = (await fn.stats()).count;
      progress(
        SECTION,
        `${turn.rate.toFixed(0)} invocations/s (${calls} function calls), ${turn.cpuMicros.toFixed(0)} µs CPU each, peak RSS ${(turn.peakRss / MIB).toFixed(0)} MiB`,
      );
      if (round === 1) {
        // The same process drains as many again: V8 has compiled its hot code by now (in the first
        // drain, perf put a fifth of the worker's CPU in the optimizing compiler's threads), so this
        // is a long-running worker's cost. The targets stay on the cold drains, as BullMQ's are measured.
        progress(SECTION, `queueing ${n} again for the same worker process (warm)`);
        await sink.reset();
        await preload(client, n, sink.url);
        const [warmCpuBefore, warmMainCpuBefore] = await Promise.all([readCpuMs(drainWorker.pid), readMainThreadCpuMs(drainWorker.pid)]);
        await callbacksReached(sink, n, drainTimeoutMs);
        const [warmCpuAfter, warmMainCpuAfter] = await Promise.all([readCpuMs(drainWorker.pid), readMainThreadCpuMs(drainWorker.pid)]);
        const warmDrained = await sink.stats();
        warm = {
          cpuMicros: ((warmCpuAfter - warmCpuBefore) * 1000) / n,
          mainCpuMicros: ((warmMainCpuAfter - warmMainCpuBefore) * 1000) / n,
          rate: perSecond(n - 1, warmDrained.lastAtMs - warmDrained.firstAtMs),
        };
        progress(SECTION, `warm: ${warm.rate.toFixed(0)} invocations/s, ${warm.cpuMicros.toFixed(0)} µs CPU each`);
      }
      await drainWorker.stop();
      if (bullmqPeer) peers.push(await bullmqPeer.drain(n, plan.maxInflight));
      // After asyncfn's turn: the plain worker binds to the durable consumer asyncfn's worker made.
      plains.push(await plainDrain(scope, client, nats.pid, fn, sink, n, plan.maxInflight));
    }
    const limitB = median(limitBs);
    const drainRate = median(turns.map((t) => t.rate));
    const cpuMicrosPerInvocation = median(turns.map((t) => t.cpuMicros));
    const mainCpuMicrosPerInvocation = median(turns.map((t) => t.mainCpuMicros));
    const natsCpuMicrosPerInvocation = median(turns.map((t) => t.natsCpuMicros));
    const fixturesCpuMicrosPerInvocation = median(turns.map((t) => t.fixturesCpuMicros));
    const peakRss = median(turns.map((t) => t.peakRss));
    const limitBRatios = turns.map((t, i) => t.rate / limitBs[i]!);
    const bullmqRatios = peers.map((p, i) => turns[i]!.rate / p.perSecond);
    const bullmq = peers.length === 0 ? undefined : medianDrain(peers);
    const plain = medianDrain(plains);
    const { cpuMicros: warmCpuMicros, mainCpuMicros: warmMainCpuMicros, rate: warmRate } = warm!;

    // The same drain with the invocations on their function's lane (fair_scheduling on: the lane
    // supervisor, a lane consumer found by discovery) instead of the queue's plain subject.
    progress(SECTION, `fair scheduling: queueing ${n} on the function's lane, draining again`);
    await sink.reset();
    await preload(client, n, sink.url, 512, laneSubject(client.spec.subject, { name: FUNCTION_NAME, namespace: 'openfaas-fn' }));
    const laneWorker = await startWorkerChild(scope, client, fn.url, { max_inflight: String(plan.maxInflight) });
    await callbacksReached(sink, n, drainTimeoutMs);
    const laneDrained = await sink.stats();
    const laneRate = perSecond(n - 1, laneDrained.lastAtMs - laneDrained.firstAtMs);
    progress(SECTION, `${laneRate.toFixed(0)} invocations/s on the function's lane (plain subject: ${drainRate.toFixed(0)}/s)`);
    await laneWorker.stop();
    await sink.reset();

    progress(SECTION, `queueing ${n} again, then draining while the gateway ingests for ${plan.concurrentIngestSeconds} s`);
    await sink.reset();
    await preload(client, n, sink.url);
    const gatewayPort = await freePort();
    const gateway = spawnAsyncfn('gateway', {
      NATS_URL: nats.url,
      functions_file: await writeFunctionsFile(scope, fn.url),
      gateway_port: String(gatewayPort),
      gateway_host: '127.0.0.1',
    });
    scope.defer(() => gateway.stop());
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    await pollUntil(
      async () => {
        gateway.assertRunning();
        return (await fetch(`${gatewayUrl}/readyz`).catch(() => undefined))?.status === 200;
      },
      'the gateway to be ready',
      30_000,
    );
    const worker2 = await startWorker(config, { resolver, logger: silentLogger });
    scope.defer(() => worker2.close(0));
    await callbacksReached(sink, 1, drainTimeoutMs);
    const before = { count: (await sink.stats()).count, atMs: epochMs() };
    const ingest = await runAutocannon({
      url: `${gatewayUrl}/async-function/${FUNCTION_NAME}`,
      connections: plan.connections,
      durationSeconds: plan.concurrentIngestSeconds,
      body: BODY,
      headers: { 'content-type': 'application/octet-stream', 'x-callback-url': sink.url },
    });
    const after = { count: (await sink.stats()).count, atMs: epochMs() };
    const backlog = await client.jsm.consumers.info(client.spec.stream, client.spec.durable);
    if (backlog.num_pending === 0) progress(SECTION, 'warning: the backlog ran out during the window; the drain rate is bounded by the ingest');
    const concurrentDrain = perSecond(after.count - before.count, after.atMs - before.atMs);
    const concurrentIngest = ingest.ok / ingest.durationSeconds;
    progress(SECTION, `while ingesting ${concurrentIngest.toFixed(0)} 202/s: ${concurrentDrain.toFixed(0)} invocations/s`);

    const s = '2 end to end';
    const inTurns = plan.rounds > 1 ? `, median of ${plan.rounds} turns` : '';
    return [
      row('drain.rate', s, `drain invocations/s (${n} queued, max_inflight ${plan.maxInflight}) vs LIMIT-B direct POST/s${inTurns}`, drainRate, {
        limit: limitB,
        target: { ratioMin: 0.15 },
      }),
      row('drain.rate.lowest', s, 'lowest of the turns: drain/s / LIMIT-B of the same turn', Math.min(...limitBRatios)),
      row('drain.rate.highest', s, 'highest of the turns: drain/s / LIMIT-B of the same turn', Math.max(...limitBRatios)),
      row('drain.fairRate', s, "drain/s with fair scheduling on (invocations on their function's lane) vs off (the queue's plain subject)", laneRate, {
        limit: drainRate,
      }),
      row('drain.cpuPerInvocation', s, 'worker CPU µs per invocation during the drain (process CPU time / invocations)', cpuMicrosPerInvocation, {
        target: { max: 250 },
      }),
      row(
        'drain.natsCpuPerInvocation',
        s,
        "nats-server's CPU µs per invocation during the drain (the broker's share; redis-server's for BullMQ below)",
        natsCpuMicrosPerInvocation,
      ),
      row(
        'drain.fixturesCpuPerInvocation',
        s,
        'the function and callback sink fixtures: CPU µs per invocation during the drain (the same work for BullMQ; the box has 2 cores for all of it)',
        fixturesCpuMicrosPerInvocation,
      ),
      row('drain.warmCpuPerInvocation', s, `worker CPU µs per invocation, a second drain of ${n} by the same process (JIT warm) vs the first`, warmCpuMicros, {
        limit: cpuMicrosPerInvocation,
      }),
      row(
        'drain.mainThreadCpuPerInvocation',
        s,
        "of which the worker's main thread (the event loop; the rest is V8's compiler and GC threads): µs per invocation, first drain vs its whole CPU",
        mainCpuMicrosPerInvocation,
        { limit: cpuMicrosPerInvocation },
      ),
      row(
        'drain.warmMainThreadCpuPerInvocation',
        s,
        "of which the worker's main thread, second drain (JIT warm): µs per invocation vs the first drain's main thread",
        warmMainCpuMicros,
        { limit: mainCpuMicrosPerInvocation },
      ),
      row('drain.warmRate', s, `drain invocations/s, the same process's second drain of ${n} vs the first`, warmRate, { limit: drainRate }),
      row('drain.rss', s, `worker RSS MiB during the drain (peak, max_inflight ${plan.maxInflight})`, peakRss / MIB, { target: { max: 100 } }),
      row('drain.vsPlain', s, `asyncfn drain/s vs the plain worker's (nats.js and undici as their docs show, no guarantees; same queue, same run)${inTurns}`, drainRate, {
        limit: plain.perSecond,
      }),
      row('plain.cpuPerInvocation', s, "the plain worker's CPU µs per invocation (limit: asyncfn's worker)", plain.cpuMicrosPerJob, {
        limit: cpuMicrosPerInvocation,
      }),
      row(
        'plain.mainThreadCpuPerInvocation',
        s,
        "of which the plain worker's main thread: µs per invocation (limit: asyncfn's main thread)",
        plain.mainThreadCpuMicrosPerJob,
        {
          limit: mainCpuMicrosPerInvocation,
        },
      ),
      row('plain.natsCpuPerInvocation', s, "nats-server's CPU µs per invocation during the plain worker's drain (limit: during asyncfn's)", plain.brokerCpuMicrosPerJob, {
        limit: natsCpuMicrosPerInvocation,
      }),
      row(
        'plain.fixturesCpuPerInvocation',
        s,
        "the fixtures' CPU µs per invocation during the plain worker's drain (limit: during asyncfn's)",
        plain.fixturesCpuMicrosPerJob,
        { limit: fixturesCpuMicrosPerInvocation },
      ),
      row('plain.rss', s, "the plain worker's RSS MiB during its drain (peak)", plain.peakRssBytes / MIB),
      ...(bullmq
        ? [
            row('drain.vsBullmq', s, `asyncfn drain/s vs BullMQ drain/s (same jobs, concurrency ${plan.maxInflight}, same run)${inTurns}`, drainRate, {
              limit: bullmq.perSecond,
              target: { ratioMin: 1.3 },
            }),
            row('drain.vsBullmq.lowest', s, "lowest of the turns: asyncfn's drain/s / BullMQ's of the same turn", Math.min(...bullmqRatios)),
            row('drain.vsBullmq.highest', s, "highest of the turns: asyncfn's drain/s / BullMQ's of the same turn", Math.max(...bullmqRatios)),
            row('bullmq.cpuPerJob', s, 'BullMQ worker CPU µs per job during its drain', bullmq.cpuMicrosPerJob),
            row(
              'bullmq.mainThreadCpuPerJob',
              s,
              "of which the BullMQ worker's main thread: µs per job (limit: asyncfn's main thread, first drain)",
              bullmq.mainThreadCpuMicrosPerJob,
              { limit: mainCpuMicrosPerInvocation },
            ),
            row('bullmq.brokerCpuPerJob', s, "redis-server's CPU µs per job during BullMQ's drain", bullmq.brokerCpuMicrosPerJob),
            row('bullmq.fixturesCpuPerJob', s, "the fixtures' CPU µs per job during BullMQ's drain (limit: during asyncfn's)", bullmq.fixturesCpuMicrosPerJob, {
              limit: fixturesCpuMicrosPerInvocation,
            }),
            row('bullmq.rss', s, 'BullMQ worker RSS MiB during its drain (peak)', bullmq.peakRssBytes / MIB),
            row('bullmq.vsPlain', s, "BullMQ's drain/s vs the plain worker's", bullmq.perSecond, { limit: plain.perSecond }),
            row('drain.targetVsPlain', s, "the drain/s the target asks (1.3 × BullMQ's) vs the plain worker's", 1.3 * bullmq.perSecond, {
              limit: plain.perSecond,
            }),
          ]
        : []),
      row('drain.concurrent.rate', '2 end to end', 'drain invocations/s while ingest runs vs LIMIT-B', concurrentDrain, { limit: limitB }),
      row(
        'drain.concurrent.ingest',
        '2 end to end',
        `ingest 202/s while draining${limitA ? ' vs LIMIT-A' : ''}`,
        concurrentIngest,
        limitA ? { limit: limitA.perSecond } : {},
      ),
    ];
  });
}
