import t from 'tap';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { request } from 'undici';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import { THROTTLES_BUCKET } from '../../src/queue/topology.js';
import { startStack, startTestWorker } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { eventually } from '../helpers/eventually.js';
import { scriptedHandler } from '../helpers/http-servers.js';
import { sample } from '../helpers/metrics-text.js';

/**
 * A function that answers 429 four times, then 200, under max_retry_attempts=2: with adaptive
 * concurrency the 429s are throttles (they wait in JetStream, use no attempt) and the invocation
 * succeeds; without it they are failed attempts and it is dead-lettered.
 */

const THROTTLES = 4;
const RETRY = { maxAttempts: 2, initialWaitMs: 50, maxWaitMs: 200 };
const handler = () => scriptedHandler((n) => (n <= THROTTLES ? { status: 429, body: 'slow down' } : { status: 200, body: 'done' }));

async function deadLetters(natsUrl: string): Promise<Array<{ callId: string; reason: string; attempts: number; status: number }>> {
  const out: string[] = [];
  const code = await runDlqCommand(['list', '--json'], { natsUrl, out: (l) => out.push(l), err: () => undefined });
  if (code !== 0) throw new Error(`asyncfn dlq list exited ${code}`);
  return out.map((line) => JSON.parse(line) as { callId: string; reason: string; attempts: number; status: number });
}

t.test('adaptive concurrency on (the default): 4 throttles then 200 with max_retry_attempts=2 succeeds on its first attempt', async (t) => {
  const { nats, fn, sink, gateway, config, resolver } = await startStack(t, { handler: handler(), config: { retry: RETRY }, worker: false });
  t.equal(config.worker.adaptiveConcurrency, true, 'on by default');
  const worker = await startTestWorker(t, config, resolver);
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '200');
  t.equal(fn.requests.length, THROTTLES + 1, 'called once per delivery: 4 throttled, 1 success');
  t.equal(callback.headers['x-retry'], '0', 'no attempt used by the throttles: the success is attempt 1');
  t.same(await deadLetters(nats.url), [], 'nothing dead-lettered');

  // The attempt ledger, keyed by call id: the attempts started and the throttled deliveries.
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await new Kvm(nc).open(THROTTLES_BUCKET);
  const entry = await kv.get(callId!);
  t.match(JSON.parse(new TextDecoder().decode(entry!.value)), { attempts: 1, throttled: THROTTLES }, 'asyncfn_throttles: one attempt, and the throttled deliveries');

  await eventually(
    async () => sample(await (await request(`${worker.url}/metrics`)).body.text(), 'asyncfn_invocations_total', { outcome: 'succeeded' }) === 1,
    'the success counted',
  );
  const metrics = await (await request(`${worker.url}/metrics`)).body.text();
  t.equal(sample(metrics, 'queue_worker_throttled_total', { queue_name: 'faas-request', function_name: 'work' }), THROTTLES);
  t.equal(sample(metrics, 'asyncfn_retries_total', { queue_name: 'faas-request', function_name: 'work' }), 0, 'no retries');
});

t.test('adaptive concurrency off: the same function is dead-lettered after 2 attempts, as before', async (t) => {
  const { nats, fn, sink, gateway } = await startStack(t, { handler: handler(), config: { retry: RETRY, worker: { adaptiveConcurrency: false } } });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '429');
  t.equal(callback.headers['x-retry'], '1');
  t.equal(fn.requests.length, RETRY.maxAttempts);
  t.match(await deadLetters(nats.url), [{ callId, reason: 'retriesExhausted', attempts: 2, status: 429 }]);
});
