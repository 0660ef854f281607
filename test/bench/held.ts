/**
 * Sections 4b and 5: thousands of invocations of a function that holds every request, all in
 * flight in one worker process (`asyncfn worker` as a child) for several ack_waits; then the same
 * with two worker processes sharing them (section 5's last rows).
 * 4b: its RSS idle before any work and with everything in flight, and the bytes per invocation.
 * 5: the CPU time it spends meanwhile (the ack-extend sweep, every ack_wait / 3, is all it does)
 * and that nothing was redelivered.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { ackExtendIntervalMs } from '../../actors/ack-extender.js';
import { rssSampler } from './memory.js';
import { readCpuMs, readRssBytes, type Fixture } from './processes.js';
import { CALLBACK_DURABLE, CALLBACK_STREAM } from '../../src/queue/topology.js';
import { pollUntil } from '../helpers/eventually.js';
import { row, type Row } from './report.js';
import { benchConfig, connectClient, inScope, preload, progress, startNats, startWorkerChild, type BenchClient, type Scope } from './stack.js';
import { epochMs, MIB } from './stats.js';

export interface HeldPlan {
  readonly invocations: number;
  readonly ackWaitSeconds: number;
  /** How long everything stays in flight while the worker's CPU time is measured. */
  readonly windowSeconds: number;
  /** Let the worker settle (JIT, first GCs) before an RSS reading. */
  readonly settleMs: number;
  /**
   * How long the worker then sits idle before its settled RSS is read: V8's memory reducer
   * shrinks the heap (the young generation, grown while the modules loaded) once a process has
   * allocated little for ~8 s, so this is the RSS an idle worker keeps, as a pod's metrics show it.
   */
  readonly quietMs: number;
}

const SECTION = 'held';

/** A nats-server of its own and a client of it, the fixtures reset, the function holding every request until released (or the scope ends). */
async function holdingStack(scope: Scope, fn: Fixture, sink: Fixture): Promise<BenchClient> {
  const nats = await startNats(scope);
  const client = await connectClient(scope, benchConfig(nats.url));
  await Promise.all([fn.reset(), sink.reset(), fn.hold(true)]);
  scope.defer(() => fn.release());
  return client;
}

export async function runHeld(plan: HeldPlan, fn: Fixture, sink: Fixture): Promise<Row[]> {
  return inScope(async (scope) => {
    const n = plan.invocations;
    const client = await holdingStack(scope, fn, sink);
    const worker = await startWorkerChild(scope, client, fn.url, { max_inflight: String(n), ack_wait: `${plan.ackWaitSeconds}s` });
    progress(SECTION, 'worker pulling');
    await delay(plan.settleMs);
    const idle = await readRssBytes(worker.pid);
    await delay(plan.quietMs);
    const quiet = await readRssBytes(worker.pid);

    progress(SECTION, `worker child at max_inflight ${n}, ack_wait ${plan.ackWaitSeconds} s: ${n} invocations of a function that holds them`);
    await preload(client, n, sink.url);
    progress(SECTION, `${n} queued`);
    await pollUntil(async () => (await fn.stats()).held >= n, `${n} held requests`, 30_000 + n * 5, 100);
    await delay(plan.settleMs);

    progress(SECTION, `all ${n} in flight; RSS and CPU time over ${plan.windowSeconds} s`);
    const sampler = rssSampler(worker.pid);
    const cpuBefore = await readCpuMs(worker.pid);
    const startedAt = epochMs();
    await delay(plan.windowSeconds * 1000);
    const cpuMs = (await readCpuMs(worker.pid)) - cpuBefore;
    const windowMs = epochMs() - startedAt;
    const held = await sampler.stop();
    const info = await client.jsm.consumers.info(client.spec.stream, client.spec.durable);

    await fn.release();
    await pollUntil(async () => (await sink.stats()).count >= n, `${n} callbacks`, 30_000 + n * 5);
    // What the direct attempts handed off (no answer within callback_first_attempt_timeout) the
    // durable retrier delivers: wait until it has nothing left, so the sink has every callback sent.
    await pollUntil(
      async () => {
        const retrier = await client.jsm.consumers.info(CALLBACK_STREAM, CALLBACK_DURABLE);
        return retrier.num_pending + retrier.num_ack_pending === 0;
      },
      'the durable callbacks delivered',
      30_000 + n * 5,
      100,
    );
    // A redelivered message would be called a second time once a slot is free.
    await delay(200);
    const calls = (await fn.stats()).count;
    const callbacks = (await sink.stats()).count;
    // Deliveries past the first of each invocation, the release included: an ack-extend sweep that
    // comes too late while the worker answers everything at once shows here, not in num_redelivered
    // (read above, before the release, and only of messages still unacked).
    const after = await client.jsm.consumers.info(client.spec.stream, client.spec.durable);
    const extraDeliveries = after.delivered.consumer_seq - n;
    progress(SECTION, 'released; every callback received');
    const sweeps = windowMs / ackExtendIntervalMs(plan.ackWaitSeconds * 1000);
    progress(
      SECTION,
      `RSS idle ${(idle / MIB).toFixed(1)} MiB, settled ${(quiet / MIB).toFixed(1)} MiB, held ${(held / MIB).toFixed(1)} MiB; CPU ${cpuMs} ms in ${windowMs.toFixed(0)} ms`,
    );
    progress(
      SECTION,
      `num_redelivered ${info.num_redelivered}; ${calls} function calls, ${after.delivered.consumer_seq} deliveries and ${callbacks} callbacks for ${n} invocations`,
    );

    await worker.stop(10_000);
    const pair = await runHeldPair(plan, fn, sink);

    const m = '4 memory';
    const l = '5 long jobs';
    return [
      row('memory.idle', m, 'worker RSS MiB, idle after start', idle / MIB),
      row('memory.idle.settled', m, `worker RSS MiB, idle ${plan.quietMs / 1000} s longer (V8's memory reducer has run)`, quiet / MIB, { target: { max: 60 } }),
      row('memory.held', m, `worker RSS MiB, ${n} sleeping invocations in flight (peak)`, held / MIB, n >= 10_000 ? { target: { max: 300 } } : {}),
      row('memory.perInvocation', m, 'bytes per in-flight invocation above idle', (held - idle) / n),
      row('longJobs.cpu', l, `worker CPU % of one core, ${n} in flight, ack_wait ${plan.ackWaitSeconds} s, ${plan.windowSeconds} s`, (cpuMs / windowMs) * 100),
      row('longJobs.cpuPerExtension', l, 'worker CPU µs per in-flight invocation per ack-extend sweep', (cpuMs * 1000) / (n * sweeps)),
      row('longJobs.redelivered', l, 'redeliveries (consumer num_redelivered)', info.num_redelivered, { target: { max: 0 } }),
      row('longJobs.extraCalls', l, 'function calls − invocations', calls - n, { target: { max: 0 } }),
      row('longJobs.extraDeliveries', l, "deliveries − invocations, the release included (the consumer's delivered count)", extraDeliveries),
      row('longJobs.extraCallbacks', l, 'callbacks received − invocations, the durable retrier done (a direct attempt answered too late comes twice)', callbacks - n),
      row('longJobs.pair.extraCalls', l, `two worker processes sharing the ${n}: function calls − invocations`, pair.extraCalls, { target: { max: 0 } }),
      row('longJobs.pair.extraDeliveries', l, 'two worker processes: deliveries − invocations, the release included', pair.extraDeliveries),
    ];
  });
}

/**
 * The release of `plan.invocations` held invocations shared by two worker processes. A burst of
 * thousands of ends starves a worker of CPU, and JetStream delivers some invocations again past
 * their ack_wait, now maybe to the other worker, while the first still calls back and settles
 * them. The other worker asks the first (src/worker/holders.ts) and must not call the function again.
 */
async function runHeldPair(plan: HeldPlan, fn: Fixture, sink: Fixture): Promise<{ extraCalls: number; extraDeliveries: number }> {
  return inScope(async (scope) => {
    const n = plan.invocations;
    const client = await holdingStack(scope, fn, sink);
    const env = { max_inflight: String(Math.ceil(n / 2)), ack_wait: `${plan.ackWaitSeconds}s` };
    // Each wholly started before the load: the second's pull check is met by the first's pulls.
    const workers = [await startWorkerChild(scope, client, fn.url, env, { probeReady: true }), await startWorkerChild(scope, client, fn.url, env, { probeReady: true })];
    progress(SECTION, `two worker children at max_inflight ${env.max_inflight} each: ${n} invocations of a function that holds them`);
    await preload(client, n, sink.url);
    await pollUntil(async () => (await fn.stats()).held >= n, `${n} held requests`, 30_000 + n * 5, 100);
    await delay(plan.settleMs);
    await fn.release();
    await pollUntil(async () => (await sink.stats()).count >= n, `${n} callbacks`, 30_000 + n * 5);
    // Every message settled (a delivery left to the other worker comes back until that one acks it).
    await pollUntil(
      async () => {
        const info = await client.jsm.consumers.info(client.spec.stream, client.spec.durable);
        return info.num_pending + info.num_ack_pending === 0;
      },
      'every invocation settled',
      30_000 + n * 5,
      100,
    );
    await delay(200);
    // A worker that died would make the other run its invocations again: a failure, not a figure.
    for (const worker of workers) worker.assertRunning();
    const calls = (await fn.stats()).count;
    const after = await client.jsm.consumers.info(client.spec.stream, client.spec.durable);
    progress(SECTION, `two workers: ${calls} function calls, ${after.delivered.consumer_seq} deliveries for ${n} invocations`);
    // What the workers warned about (duplicates kept, deliveries left to the other, stale ones acked, any left unsettled).
    const warned = new Map<string, number>();
    for (const worker of workers) for (const [msg, count] of worker.warnings()) warned.set(msg, (warned.get(msg) ?? 0) + count);
    for (const [msg, count] of [...warned].sort((a, b) => b[1] - a[1])) progress(SECTION, `two workers warned ${count} ×: ${msg}`);
    return { extraCalls: calls - n, extraDeliveries: after.delivered.consumer_seq - n };
  });
}
