/**
 * Section 3, latency at low load: invocations one after another through gateway, queue, worker,
 * function and callback. Times are taken where things happen: the 202 in this process, the
 * function start and the callback in the fixture processes (epoch ms, one machine, one clock).
 */
import { request } from 'undici';
import { startGateway } from '../../src/gateway/start.js';
import { startWorker } from '../../src/worker/index.js';
import { within } from '../helpers/eventually.js';
import { row, type Row } from './report.js';
import { BODY, benchConfig, benchResolver, FUNCTION_NAME, inScope, progress, silentLogger, startFixtures, startNats } from './stack.js';
import { epochMs, percentile } from './stats.js';

export interface LatencyPlan {
  readonly invocations: number;
}

const SECTION = 'latency';
/** Untimed invocations first: connections opened, code warm. */
const WARMUP = 5;

export async function runLatency(plan: LatencyPlan): Promise<Row[]> {
  return inScope(async (scope) => {
    const nats = await startNats(scope);
    const { fn, sink } = await startFixtures(scope);
    await Promise.all([fn.trace(true), sink.trace(true)]);
    const config = benchConfig(nats.url, { worker: { maxInflight: 100 } });
    const resolver = benchResolver(fn.url);
    const gateway = await startGateway(config, { resolver, logger: silentLogger });
    scope.defer(() => gateway.close());
    const worker = await startWorker(config, { resolver, logger: silentLogger });
    scope.defer(() => worker.close(0));

    const startedAt = new Map<string, number>();
    const calledBackAt = new Map<string, number>();
    const waiting = new Map<string, () => void>();
    fn.onRequest((callId, atMs) => startedAt.set(callId, atMs));
    sink.onRequest((callId, atMs) => {
      calledBackAt.set(callId, atMs);
      waiting.get(callId)?.();
    });

    const accepted: number[] = [];
    const toStart: number[] = [];
    const toCallback: number[] = [];
    progress(SECTION, `${plan.invocations} invocations one after another (after ${WARMUP} untimed)`);
    for (let i = 0; i < WARMUP + plan.invocations; i++) {
      const sentAt = epochMs();
      const res = await request(`${gateway.url}/async-function/${FUNCTION_NAME}`, {
        method: 'POST',
        body: BODY,
        headers: { 'content-type': 'application/octet-stream', 'x-callback-url': sink.url },
      });
      const acceptedAt = epochMs();
      await res.body.dump();
      if (res.statusCode !== 202) throw new Error(`the gateway answered ${res.statusCode}`);
      const callId = String(res.headers['x-call-id']);
      if (!calledBackAt.has(callId)) {
        await within(new Promise<void>((done) => waiting.set(callId, done)), 10_000, `the callback of ${callId}`);
        waiting.delete(callId);
      }
      if (i < WARMUP) continue;
      accepted.push(acceptedAt - sentAt);
      toStart.push(startedAt.get(callId)! - sentAt);
      toCallback.push(calledBackAt.get(callId)! - sentAt);
    }

    const s = '3 latency';
    return [
      row('latency.accept.p50', s, '202 latency p50 ms', percentile(accepted, 50)),
      row('latency.accept.p99', s, '202 latency p99 ms', percentile(accepted, 99)),
      row('latency.start.p50', s, 'enqueue → function start p50 ms', percentile(toStart, 50)),
      row('latency.start.p99', s, 'enqueue → function start p99 ms', percentile(toStart, 99)),
      row('latency.callback.p50', s, 'enqueue → callback p50 ms', percentile(toCallback, 50)),
      row('latency.callback.p99', s, 'enqueue → callback p99 ms', percentile(toCallback, 99)),
    ];
  });
}
