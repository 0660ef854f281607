import { randomBytes, randomUUID } from 'node:crypto';
import { jetstream, type Consumer } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { SpanKind } from '@opentelemetry/api';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import { DeadLetterHeader, decodeDeadLetter } from '../../src/queue/dead-letter.js';
import { EnvelopeHeader } from '../../src/queue/envelope.js';
import { installInMemoryTracing } from '../helpers/tracing.js';
import { configFor, resolverFor, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { gatewayQueueRequest } from '../helpers/go-queue-request.js';
import { scriptedHandler, startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { DEAD_LETTER_STREAM } from '../../src/queue/topology.js';

/**
 * Messages published the way the OpenFaaS gateway (Pro, JetStream) publishes them: a JSON
 * QueueRequest straight onto the queue's subject, no asyncfn headers. asyncfn's gateway is not
 * involved; its worker must run them as it runs its own.
 */

async function publisher(t: Test, natsUrl: string): Promise<NatsConnection> {
  const nc = await connect({ servers: natsUrl });
  t.teardown(() => nc.close());
  return nc;
}

/** Publishes to a stream's subject and waits for the PubAck, as the OpenFaaS gateway does. */
async function publish(nc: NatsConnection, subject: string, data: Uint8Array): Promise<number> {
  return (await jetstream(nc).publish(subject, data)).seq;
}

/** The dead-letter stream, read in order. */
async function deadLetters(nc: NatsConnection): Promise<() => Promise<{ seq: number; headers: Map<string, string>; raw: MsgHdrs | undefined; data: Uint8Array }>> {
  const consumer: Consumer = await jetstream(nc).consumers.get(DEAD_LETTER_STREAM);
  return async () => {
    const msg = await consumer.next({ expires: 15_000 });
    if (!msg) throw new Error('no dead letter within 15 s');
    const headers = new Map<string, string>();
    for (const [k, v] of msg.headers ?? []) headers.set(k, v[0]!);
    return { seq: msg.seq, headers, raw: msg.headers, data: msg.data };
  };
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function recordOf(gatewayUrl: string, callId: string): Promise<Record<string, unknown>> {
  const res = await request(`${gatewayUrl}/async-function/${callId}`);
  return (await res.body.json()) as Record<string, unknown>;
}

t.test('a QueueRequest on faas-request runs and is called back with the OpenFaaS headers; status and metrics as for our own', async (t) => {
  const { nats, fn, sink, gateway, config, resolver } = await startStack(t, {
    worker: false,
    handler: (req, res) => {
      res.writeHead(201, { 'content-type': 'application/x-result' });
      res.end(Buffer.concat([Buffer.from('got:'), req.body]));
    },
  });
  const worker = await startTestWorker(t, config, resolver);
  const nc = await publisher(t, nats.url);
  const body = randomBytes(300);
  const callId = randomUUID();
  await publish(
    nc,
    'faas-request',
    gatewayQueueRequest({
      fn: 'work.openfaas-fn',
      body,
      callId,
      callbackUrl: `${sink.url}/hook?a=1&b=2`,
      headers: { 'content-type': 'application/octet-stream', 'x-custom': ['one', 'two'] },
      method: 'PUT',
      path: '/sub/a b',
      query: 'x=1&y=%20z',
      annotations: { 'com.openfaas.queue': 'faas-request' },
    }),
  );

  const callback = await sink.waitForCallId(callId);
  t.equal(fn.requests.length, 1, 'the function ran once');
  const call = fn.requests[0]!;
  t.equal(call.method, 'PUT');
  t.equal(call.url, '/sub/a%20b?x=1&y=%20z', 'path (escaped again) and raw query');
  t.equal(call.headers['content-type'], 'application/octet-stream');
  t.equal(call.headers['x-custom'], 'one, two', 'repeated header values');
  t.equal(call.headers['x-call-id'], callId);
  t.ok(call.body.equals(body), 'binary body intact');

  t.equal(callback.url, '/hook?a=1&b=2', "callback to the URL the caller gave (& survived Go's \\u0026)");
  t.ok(callback.body.equals(Buffer.concat([Buffer.from('got:'), body])), 'callback carries the result');
  t.equal(callback.headers['content-type'], 'application/x-result');
  t.equal(callback.headers['x-call-id'], callId);
  t.equal(callback.headers['x-function-status'], '201');
  t.equal(callback.headers['x-function-name'], 'work');
  t.match(callback.headers['x-duration-seconds'], /^\d+\.\d{6}$/);
  t.match(callback.headers['x-start-time'], /^\d{19}$/);
  t.equal(callback.headers['x-retry'], '0');
  t.match(callback.headers['user-agent'], /^asyncfn-queue-worker\//);

  await eventually(async () => (await recordOf(gateway.url, callId)).state === 'succeeded', 'the record to say succeeded');
  const record = await recordOf(gateway.url, callId);
  t.equal(record.function, 'work');
  t.equal(record.queue, 'faas-request');
  t.equal(record.status, 201);

  const metrics = await (await request(`${worker.url}/metrics`)).body.text();
  t.equal(sample(metrics, 'queue_worker_messages_processed_total', { queue_name: 'faas-request' }), 1);
  t.equal(sample(metrics, 'asyncfn_invocations_total', { queue_name: 'faas-request', function_name: 'work', outcome: 'succeeded' }), 1);
  t.equal(sample(metrics, 'asyncfn_invocation_duration_seconds_count', { function_name: 'work', status: '201' }), 1);
});

t.test('without X-Call-Id the worker derives one (kept across a retry); without a callback it still runs', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(
    t,
    scriptedHandler((n) => (n === 1 ? { status: 502, body: 'flaky' } : { status: 200, body: 'ok' })),
  );
  const sink = await startCallbackSink(t);
  const config = configFor(nats.url, { retry: { maxAttempts: 3, initialWaitMs: 20, maxWaitMs: 50 } });
  const resolver = resolverFor({ work: fn.url });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const nc = await publisher(t, nats.url);

  await publish(nc, 'faas-request', gatewayQueueRequest({ fn: 'work', body: 'x', callbackUrl: sink.url }));
  const [callback] = await sink.waitFor(1);
  t.equal(fn.requests.length, 2, 'a 502 is retried through JetStream');
  const callId = String(callback!.headers['x-call-id']);
  t.match(callId, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a derived call id');
  t.equal(fn.requests[0]!.headers['x-call-id'], callId, 'the same id on both attempts');
  t.equal(fn.requests[1]!.headers['x-call-id'], callId);
  t.equal(callback!.headers['x-retry'], '1');
  t.equal(callback!.headers['x-function-status'], '200');

  const quiet = randomUUID();
  await publish(nc, 'faas-request', gatewayQueueRequest({ fn: 'work', body: 'no callback', callId: quiet }));
  await eventually(async () => (await recordOf(gateway.url, quiet)).state === 'succeeded', 'the uncalled-back invocation to succeed');
  t.equal(sink.received.length, 1, 'no callback was asked for');
});

t.test('a named queue: a QueueRequest on its subject is run by the worker serving it', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const sink = await startCallbackSink(t);
  const config = configFor(nats.url, {
    worker: {
      queues: [
        { name: 'faas-request', maxInflight: 2, upstreamTimeoutMs: 10_000 },
        { name: 'slow-jobs', maxInflight: 2, upstreamTimeoutMs: 10_000 },
      ],
    },
  });
  const resolver = resolverFor({ work: fn.url });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const nc = await publisher(t, nats.url);

  const callId = randomUUID();
  await publish(
    nc,
    'slow-jobs',
    gatewayQueueRequest({ fn: 'work', body: 'queued', callId, callbackUrl: sink.url, queueName: 'slow-jobs', annotations: { 'com.openfaas.queue': 'slow-jobs' } }),
  );
  const callback = await sink.waitForCallId(callId);
  t.equal(callback.body.toString(), 'queued');
  t.equal(callback.headers['x-function-status'], '200');
  await eventually(async () => (await recordOf(gateway.url, callId)).queue === 'slow-jobs', 'the record to name queue slow-jobs');
});

t.test("a caller's X-Call-Id the OpenFaaS gateway accepted but asyncfn cannot keep: the work runs under a derived call id", async (t) => {
  const { nats, sink, fn } = await startStack(t);
  const nc = await publisher(t, nats.url);
  await publish(nc, 'faas-request', gatewayQueueRequest({ fn: 'work', body: 'keep me', callId: 'order:42', callbackUrl: sink.url }));
  const [callback] = await sink.waitFor(1);
  const callId = callback!.headers['x-call-id'] as string;
  t.match(callId, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a derived UUID');
  t.equal(callback!.body.toString(), 'keep me');
  t.equal(fn.requests.length, 1, 'the function ran once');
  t.equal(fn.requests[0]!.headers['x-call-id'], callId, 'under the same call id');
});

t.test("a QueueRequest's callback chained into asyncfn's /async-function/<next> gets a fresh call id: both records stay", async (t) => {
  const nats = await startNatsServer(t);
  const first = await startFunctionServer(t, (_req, res) => void res.writeHead(200).end('first'));
  const next = await startFunctionServer(t, (_req, res) => void res.writeHead(200).end('next'));
  const config = configFor(nats.url, { security: { callbackAllow: ['127.0.0.0/8'] } });
  const resolver = resolverFor({ work: first.url, next: next.url });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const nc = await publisher(t, nats.url);

  const callId = randomUUID();
  // The OpenFaaS chaining pattern: the first function's callback is the next function's async route.
  await publish(nc, 'faas-request', gatewayQueueRequest({ fn: 'work', body: 'start', callId, callbackUrl: `${gateway.url}/async-function/next` }));
  await next.waitForRequests(1, 15_000);
  const chained = next.requests[0]!;
  t.not(chained.headers['x-call-id'], callId, 'the next link runs under a call id of its own');
  t.equal(chained.headers['x-parent-call-id'], callId, 'with the first as its parent');
  t.equal(chained.body.toString(), 'first', "the first function's result is the next one's body");
  const final = async (id: string) => (await request(`${gateway.url}/async-function/${id}?wait=10s`)).body.json();
  t.match(await final(String(chained.headers['x-call-id'])), { function: 'next', state: 'succeeded', parentCallId: callId });
  t.match(await final(callId), { function: 'work', state: 'succeeded' }, "the first link's record is still its own");
});

t.test('a malformed QueueRequest is dead-lettered as poison with its reason; the next one still runs', async (t) => {
  const { nats, sink } = await startStack(t);
  const nc = await publisher(t, nats.url);
  const next = await deadLetters(nc);

  const malformed = new TextEncoder().encode('{"Method":"POST","Body":"not base64!","Header":{"X-Call-Id":["fine-id"]}}');
  await publish(nc, 'faas-request', malformed);
  const letter = await next();
  t.equal(letter.headers.get(DeadLetterHeader.reason), 'poison');
  const error = letter.headers.get(DeadLetterHeader.error) ?? '';
  t.match(error, /QueueRequest Function is missing/);
  t.match(error, /QueueRequest Body is not padded standard base64/);
  t.same(Buffer.from(letter.data), Buffer.from(malformed), 'the message is kept as published');

  const callId = randomUUID();
  await publish(nc, 'faas-request', gatewayQueueRequest({ fn: 'work', body: 'fine', callId, callbackUrl: sink.url }));
  t.equal((await sink.waitForCallId(callId)).body.toString(), 'fine');
});

t.test('retries exhausted: the dead letter keeps the published QueueRequest, and dlq replay runs it again under its call id', async (t) => {
  let healthy = false;
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, (_req, res) => {
    res.writeHead(healthy ? 200 : 502).end(healthy ? 'fixed' : 'down');
  });
  const sink = await startCallbackSink(t);
  const config = configFor(nats.url, { retry: { maxAttempts: 2, initialWaitMs: 20, maxWaitMs: 50 } });
  const resolver = resolverFor({ work: fn.url });
  await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const nc = await publisher(t, nats.url);
  const next = await deadLetters(nc);

  const callId = randomUUID();
  const published = gatewayQueueRequest({ fn: 'work', body: 'again', callId, callbackUrl: sink.url });
  await publish(nc, 'faas-request', published);
  const letter = await next();
  t.equal(letter.headers.get(DeadLetterHeader.reason), 'retriesExhausted');
  t.same(Buffer.from(letter.data), Buffer.from(published), 'the body is the published QueueRequest, byte for byte');
  t.equal(letter.headers.get(EnvelopeHeader.callId), callId, 'plus the call id it ran under');
  t.notOk(letter.headers.has(EnvelopeHeader.version), 'not turned into an envelope');
  const first = await sink.waitForCallId(callId);
  t.equal(first.headers['x-function-status'], '502');

  const shown = decodeDeadLetter({ seq: letter.seq, header: letter.raw, data: letter.data });
  t.equal(shown.invocation?.callId, callId, 'dlq show decodes it');
  t.equal(shown.invocation?.functionName, 'work');

  healthy = true;
  const out: string[] = [];
  const err: string[] = [];
  const code = await runDlqCommand(['replay', String(letter.seq)], { natsUrl: nats.url, out: (l) => out.push(l), err: (l) => err.push(l) });
  t.equal(code, 0, err.join('\n'));
  t.same(out, ['replayed 1, skipped 0']);
  await sink.waitFor(2);
  const replayed = sink.received[1]!;
  t.equal(replayed.headers['x-call-id'], callId, 'the replay runs under the same call id');
  t.equal(replayed.headers['x-function-status'], '200');
  t.equal(replayed.body.toString(), 'fixed');
});

t.test('no trace context in a QueueRequest: processing starts a new trace, with the function call in it', async (t) => {
  const tracing = await installInMemoryTracing();
  t.teardown(() => tracing.shutdown());
  const { nats, sink, fn } = await startStack(t);
  const nc = await publisher(t, nats.url);
  const callId = randomUUID();
  await publish(nc, 'faas-request', gatewayQueueRequest({ fn: 'work', body: 'traced', callId, callbackUrl: sink.url }));
  await sink.waitForCallId(callId);

  const spans = await tracing.waitForSpans((s) => s.some((span) => span.name === 'callback work'), 'the callback span');
  const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
  t.equal(consumer?.name, 'process faas-request');
  t.equal(consumer?.parentSpanContext, undefined, 'a root span: nothing came with the message');
  t.equal(consumer?.attributes['asyncfn.call_id'], callId);
  const traceId = consumer!.spanContext().traceId;
  const invoke = spans.find((s) => s.name === 'invoke work');
  t.equal(invoke?.parentSpanContext?.spanId, consumer!.spanContext().spanId, 'the function call is a child of it');
  t.match(fn.requests[0]!.headers['traceparent'], new RegExp(`^00-${traceId}-${invoke!.spanContext().spanId}-`), 'and the function gets its context');
  t.equal(spans.find((s) => s.name === 'callback work')?.attributes['asyncfn.call_id'], callId, 'the callback is traced too');
});
