import { randomBytes, randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { millis } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { CallbackNotStorableError, handOffCallback } from '../../src/callback/stored.js';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import { encodeEnvelope } from '../../src/queue/envelope.js';
import { CALLBACK_DURABLE, CALLBACK_STREAM, CALLBACK_SUBJECT_PREFIX, ensureCallbackStream, PAYLOAD_BUCKET } from '../../src/queue/topology.js';
import { startStack, startTestWorker } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { eventually } from '../helpers/eventually.js';
import { startCallbackSink } from '../helpers/http-servers.js';
import { testInvocation } from '../helpers/invocations.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { sample, scrape } from '../helpers/metrics-text.js';

/**
 * Handing a failed callback to durable delivery: a result too large for one message goes by
 * reference (the payload bucket), and one that cannot be stored at all is a dead letter, never a
 * second run of the function.
 */

/** A NATS server whose messages hold 64 KiB: a result of 100 KiB does not fit one. */
const SMALL_MAX_PAYLOAD = 'max_payload: 65536';

async function jetstream(t: Test, natsUrl: string) {
  const nc = await connect({ servers: natsUrl });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  return { nc, jsm, js: jsm.jetstream() };
}

async function deadLetters(natsUrl: string): Promise<Array<Record<string, unknown>>> {
  const out: string[] = [];
  await runDlqCommand(['list', '--json'], { natsUrl, out: (l) => out.push(l), err: () => undefined });
  return out.map((line) => JSON.parse(line) as Record<string, unknown>);
}

t.test('a result larger than max_payload whose direct callback fails is handed off by reference and delivered whole; the function ran once', async (t) => {
  const result = randomBytes(100 * 1024);
  const { nats, fn, gateway, config, resolver } = await startStack(t, {
    natsConfig: SMALL_MAX_PAYLOAD,
    handler: (_req, res) => void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(result),
    config: { gateway: { maxBodyBytes: 16 * 1024 }, callback: { initialWaitMs: 50, maxWaitMs: 100 } },
    worker: false,
  });
  const worker = await startTestWorker(t, config, resolver);
  const receiver = await startCallbackSink(t, (n) => (n === 1 ? 503 : 200));
  const { js, jsm } = await jetstream(t, nats.url);

  const [callId] = await enqueueMany(gateway.url, 'work', 1, `${receiver.url}/hook`);
  const [direct, durable] = await receiver.waitFor(2);
  t.equal(direct!.headers['x-call-id'], callId);
  t.equal(durable!.headers['x-call-id'], callId, 'the durable attempt posts the same callback');
  t.ok(Buffer.compare(durable!.body, result) === 0, 'with the whole result, byte for byte');
  t.equal(durable!.headers['content-type'], 'application/octet-stream');
  t.equal(fn.requests.length, 1, 'the function ran once');

  await eventually(async () => (await jsm.streams.info(CALLBACK_STREAM)).state.messages === 0, 'the stored callback acked');
  await eventually(async () => (await (await new Objm(js).open(PAYLOAD_BUCKET)).list()).length === 0, 'the stored result deleted once delivered');
  t.same(await deadLetters(nats.url), [], 'no dead letter');
  const metrics = await scrape(worker.url);
  t.equal(sample(metrics, 'asyncfn_callbacks_total', { result: 'handedOff' }), 1, 'one hand-off');
  t.equal(sample(metrics, 'asyncfn_callbacks_total', { result: 'delivered' }), 1, 'one delivery, by the retrier');
  t.equal(sample(metrics, 'asyncfn_invocations_total', { outcome: 'succeeded' }), 1);
});

t.test('a callback too large to store, even by reference, is a callbackFailed dead letter and the invocation is acked: the function ran once', async (t) => {
  // The function's Content-Type travels in the stored callback's headers, which the payload bucket
  // cannot take: 12 KiB of it beside a callback URL of 52 KiB (the invocation, without it, fits).
  const contentType = `text/plain; x=${'a'.repeat(12 * 1024)}`;
  const { nats, fn, config, resolver } = await startStack(t, {
    natsConfig: SMALL_MAX_PAYLOAD,
    handler: (_req, res) => void res.writeHead(200, { 'content-type': contentType }).end('the result'),
    config: { gateway: { maxBodyBytes: 16 * 1024 }, callback: { initialWaitMs: 50, maxWaitMs: 100 } },
    worker: false,
  });
  const receiver = await startCallbackSink(t, 503);
  const { js } = await jetstream(t, nats.url);
  const worker = await startTestWorker(t, config, resolver);
  // Published straight onto the stream: the gateway refuses a callback URL this long.
  const callbackUrl = `${receiver.url}/hook?pad=${'p'.repeat(52 * 1024)}`;
  const invocation = testInvocation({ callId: randomUUID(), functionName: 'work', callbackUrl, enqueuedAtMs: Date.now(), body: new TextEncoder().encode('in') });
  const { headers, data } = encodeEnvelope(invocation);
  await js.publish('faas-request', data, { headers });

  let letters: Array<Record<string, unknown>> = [];
  await eventually(async () => (letters = await deadLetters(nats.url)).length > 0, 'the callback dead letter');
  // Too large for the dead letters too: stored without its headers, as dead letters are shrunk.
  t.match(letters, [{ reason: 'callbackFailed', attempts: 1, error: /not handed off: the callback is too large to store.*original headers dropped/ }]);
  await eventually(async () => sample(await scrape(worker.url), 'asyncfn_invocations_total', { outcome: 'succeeded' }) === 1, 'the invocation settled as succeeded');
  const metrics = await scrape(worker.url);
  t.equal(sample(metrics, 'asyncfn_callbacks_total', { result: 'handedOff' }), 0, 'nothing was handed off');
  t.equal(sample(metrics, 'asyncfn_callbacks_total', { result: 'deadLettered' }), 1);
  t.equal(sample(metrics, 'asyncfn_dead_letters_total', { reason: 'callbackFailed' }), 1);
  t.equal(fn.requests.length, 1, 'the function ran once');
});

t.test('handOffCallback: a result over max_payload with no payload bucket to put it in rejects as not storable', async (t) => {
  const nats = await startNatsServer(t, SMALL_MAX_PAYLOAD);
  const { js, jsm } = await jetstream(t, nats.url);
  await ensureCallbackStream(jsm, { replicas: 1, storage: 'memory', ackWaitMs: 30_000 });
  const invocation = testInvocation({ callbackUrl: 'http://127.0.0.1:9/hook' });
  const outcome = { status: 200, body: randomBytes(70 * 1024), startedAtMs: 0, durationMs: 1 };
  const req = { invocation, outcome, attempt: 1, maxAttempts: 3, error: 'callback failed: receiver answered 503', status: 503 };
  await t.rejects(handOffCallback(js, 'faas-request', req), CallbackNotStorableError);
  await handOffCallback(js, 'faas-request', { ...req, outcome: { ...outcome, body: randomBytes(1024) } });
  t.equal((await jsm.streams.info(CALLBACK_STREAM)).state.messages, 1, 'a result that fits goes in the message, as before');
});

t.test('a message in the callback stream that is no stored callback is dead-lettered as poison and acked, once; the retrier keeps delivering', async (t) => {
  const { nats, fn, gateway, config, resolver } = await startStack(t, { config: { callback: { initialWaitMs: 50, maxWaitMs: 100 } }, worker: false });
  const worker = await startTestWorker(t, config, resolver);
  const receiver = await startCallbackSink(t, (n) => (n === 1 ? 503 : 200));
  const { js, jsm } = await jetstream(t, nats.url);

  await js.publish(`${CALLBACK_SUBJECT_PREFIX}faas-request`, new TextEncoder().encode('not an envelope'));
  let letters: Array<Record<string, unknown>> = [];
  await eventually(async () => (letters = await deadLetters(nats.url)).length > 0, 'the poison dead letter');
  t.match(letters, [{ reason: 'poison', queue: 'faas-request', attempts: 1, error: /^undecodable callback: / }]);
  await eventually(async () => (await jsm.consumers.info(CALLBACK_STREAM, CALLBACK_DURABLE)).num_ack_pending === 0, 'acked, not left pending');
  t.equal((await jsm.streams.info(CALLBACK_STREAM)).state.messages, 0, 'nothing left in the callback stream');

  const [callId] = await enqueueMany(gateway.url, 'work', 1, `${receiver.url}/hook`, () => 'a real result');
  const [, durable] = await receiver.waitFor(2);
  t.equal(durable!.headers['x-call-id'], callId, 'a stored callback after it is delivered');
  t.equal(durable!.body.toString(), 'a real result');
  t.equal(fn.requests.length, 1);
  t.equal((await deadLetters(nats.url)).length, 1, 'one dead letter: the poison one, stored once');
  t.equal(sample(await scrape(worker.url), 'asyncfn_dead_letters_total', { reason: 'poison' }), 1);
});

t.test('a worker started with a longer callback_timeout sets the callback consumer ack_wait to it (+30 s), so a waiting attempt is not posted twice', async (t) => {
  const { nats, config, resolver } = await startStack(t, { worker: false });
  const { jsm } = await jetstream(t, nats.url);
  const ackWaitMs = async () => millis((await jsm.consumers.info(CALLBACK_STREAM, CALLBACK_DURABLE)).config.ack_wait ?? 0);

  const first = await startTestWorker(t, { ...config, callback: { ...config.callback, timeoutMs: 2_000 } }, resolver);
  t.equal(await ackWaitMs(), 32_000, 'made under callback_timeout 2s');
  await first.close(0);

  await startTestWorker(t, { ...config, callback: { ...config.callback, timeoutMs: 60_000 } }, resolver);
  t.equal(await ackWaitMs(), 90_000, 'raised with callback_timeout 60s: an attempt waiting 40 s for its receiver is not redelivered');
});
