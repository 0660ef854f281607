/**
 * Section 1, ingest: async 202s per second through the gateway (autocannon in its own process,
 * 1 KiB bodies, 100 connections), beside LIMIT-A: the same envelope published straight to a
 * stream of the same configuration over one Node connection, 100 in flight, each PubAck awaited.
 */
import { encodeEnvelope } from '../../src/queue/envelope.js';
import { startGateway } from '../../src/cli/gateway.js';
import { ensureStream } from '../../src/queue/provision.js';
import { row, type Row } from './report.js';
import { runAutocannon } from './processes.js';
import { BODY, benchConfig, benchInvocation, benchResolver, connectClient, FUNCTION_NAME, inScope, progress, silentLogger, startNats, type BenchClient } from './stack.js';
import { epochMs, percentile, perSecond } from './stats.js';

export interface IngestPlan {
  readonly seconds: number;
  readonly limitSeconds: number;
  /** A short untimed run of each side first, so both are measured warm; 0 to skip. */
  readonly warmupSeconds: number;
  readonly connections: number;
}

export interface LimitA {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

const SECTION = 'ingest';
/** Never called: nothing consumes in this section; the header only makes the request realistic. */
const CALLBACK_URL = 'http://127.0.0.1:9/callback';

/** Publishes for `seconds` with `inFlight` publishes outstanding, each awaiting its PubAck. */
async function measureLimitA(client: BenchClient, subject: string, inFlight: number, seconds: number): Promise<LimitA> {
  const latencies: number[] = [];
  const startedAt = epochMs();
  const deadline = startedAt + seconds * 1000;
  const lane = async (): Promise<void> => {
    while (epochMs() < deadline) {
      const { headers, data } = encodeEnvelope(benchInvocation(CALLBACK_URL));
      const sentAt = epochMs();
      await client.js.publish(subject, data, { headers, timeout: 30_000 });
      latencies.push(epochMs() - sentAt);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return { perSecond: perSecond(latencies.length, epochMs() - startedAt), p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

export async function runIngest(plan: IngestPlan): Promise<{ rows: Row[]; limitA: LimitA }> {
  return inScope(async (scope) => {
    const nats = await startNats(scope);
    const config = benchConfig(nats.url);
    const client = await connectClient(scope, config);
    // LIMIT-A's own stream, configured like the queue's, so the ingest's messages do not change it.
    const limitSpec = { ...client.spec, stream: 'bench-limit-a', subject: 'bench-limit-a' };
    await ensureStream(client.jsm, limitSpec, silentLogger);
    const gateway = await startGateway(config, { resolver: benchResolver(CALLBACK_URL), logger: silentLogger });
    scope.defer(() => gateway.close());

    const load = (seconds: number) =>
      runAutocannon({
        url: `${gateway.url}/async-function/${FUNCTION_NAME}`,
        connections: plan.connections,
        durationSeconds: seconds,
        body: BODY,
        headers: { 'content-type': 'application/octet-stream', 'x-callback-url': CALLBACK_URL },
      });
    if (plan.warmupSeconds > 0) {
      progress(SECTION, `warming up for ${plan.warmupSeconds} s`);
      await measureLimitA(client, limitSpec.subject, plan.connections, plan.warmupSeconds);
      await load(plan.warmupSeconds);
    }
    progress(SECTION, `LIMIT-A: raw JetStream publish, ${plan.connections} in flight, ${plan.limitSeconds} s`);
    const limitA = await measureLimitA(client, limitSpec.subject, plan.connections, plan.limitSeconds);
    progress(SECTION, `LIMIT-A ${limitA.perSecond.toFixed(0)} msg/s; gateway under autocannon -c ${plan.connections} for ${plan.seconds} s`);
    const result = await load(plan.seconds);
    const failed = result.non2xx + result.errors + result.timeouts;
    if (failed > 0) progress(SECTION, `warning: ${failed} requests were not answered 2xx`);
    const rate = result.ok / result.durationSeconds;
    progress(SECTION, `${rate.toFixed(0)} 202/s`);
    const rows = [
      row('ingest.rate', '1 ingest', `async 202/s (1 KiB, c=${plan.connections}) vs LIMIT-A publish+PubAck/s`, rate, {
        limit: limitA.perSecond,
        target: { ratioMin: 0.6 },
      }),
      row('ingest.p50', '1 ingest', '202 latency p50 ms (limit: LIMIT-A publish p50)', result.latency.p50, { limit: limitA.p50Ms, ratio: false }),
      row('ingest.p99', '1 ingest', '202 latency p99 ms (limit: LIMIT-A publish p99)', result.latency.p99, { limit: limitA.p99Ms, ratio: false }),
      row('ingest.failed', '1 ingest', 'requests not answered 2xx', failed, { target: { max: 0 } }),
    ];
    return { rows, limitA };
  });
}
