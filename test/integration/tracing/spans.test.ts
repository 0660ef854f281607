import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { configFor, resolverFor, startStack, startTestGateway, startTestWorker } from '../../helpers/asyncfn.js';
import { scriptedHandler, startCallbackSink, startFunctionServer } from '../../helpers/http-servers.js';
import { startNatsServer } from '../../helpers/nats-server.js';
import { decodeEnvelope } from '../../../src/queue/envelope.js';
import { tracer } from '../../../src/telemetry/spans.js';
import { traceIdOf } from '../../../src/telemetry/tracing.js';
import { installInMemoryTracing, type InMemoryTracing } from '../../helpers/tracing.js';

// Gateway and worker run in this process, so every span lands in one in-memory exporter.

function callerContext(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

async function tracingFor(t: Test): Promise<InMemoryTracing> {
  const tracing = await installInMemoryTracing();
  t.teardown(() => tracing.shutdown());
  return tracing;
}

const idOf = (span: ReadableSpan | undefined): string | undefined => span?.spanContext().spanId;
const parentOf = (span: ReadableSpan | undefined): string | undefined => span?.parentSpanContext?.spanId;
/** The process span's name: "process <queue>" once the worker tells the function adapter its queue. */
const PROCESS = /^process faas-request$/;

t.test('async: one trace from the caller through publish, processing, the function call and the callback', async (t) => {
  const tracing = await tracingFor(t);
  const { fn, sink, gateway, config } = await startStack(t);
  const caller = callerContext();

  const res = await request(`${gateway.url}/async-function/work?x=1`, {
    method: 'POST',
    body: 'hi',
    headers: { traceparent: caller.traceparent, tracestate: 'caller=1', 'x-callback-url': sink.url },
  });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  const callId = String(res.headers['x-call-id']);
  const callback = await sink.waitForCallId(callId);
  const spans = await tracing.waitForSpans((s) => s.length >= 5 && s.some((span) => span.name === 'callback work'), 'five spans, the callback span among them');
  const inTrace = spans.filter((s) => s.spanContext().traceId === caller.traceId);
  t.equal(inTrace.length, spans.length, "every span belongs to the caller's trace");
  t.same(
    spans.map((s) => s.name).sort(),
    ['POST /async-function/*', 'callback work', 'invoke work', `publish ${config.queue.subject}`, spans.find((s) => PROCESS.test(s.name))?.name].sort(),
  );

  const server = spans.find((s) => s.kind === SpanKind.SERVER);
  t.equal(server?.name, 'POST /async-function/*');
  t.equal(parentOf(server), caller.spanId, "the server span's parent is the caller's span");
  t.match(server?.attributes, {
    'http.request.method': 'POST',
    'http.route': '/async-function/*',
    'url.path': '/async-function/work',
    'http.response.status_code': 202,
    'asyncfn.call_id': callId,
    'faas.invoked_name': 'work',
    'asyncfn.queue': config.queue.stream,
  });

  const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
  t.equal(producer?.name, `publish ${config.queue.subject}`);
  t.equal(parentOf(producer), idOf(server), 'publish is a child of the server span');
  t.match(producer?.attributes, {
    'messaging.system': 'nats',
    'messaging.destination.name': config.queue.subject,
    'messaging.message.id': callId,
    'messaging.operation.type': 'publish',
    'asyncfn.call_id': callId,
  });
  t.ok(producer!.endTime[0] + producer!.endTime[1] / 1e9 <= server!.endTime[0] + server!.endTime[1] / 1e9, 'publish ends before the response');

  const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
  t.match(consumer?.name, PROCESS);
  t.equal(parentOf(consumer), idOf(producer), "processing's parent is the producer span from the envelope");
  t.equal(consumer?.parentSpanContext?.isRemote, true);
  t.match(consumer?.attributes, {
    'messaging.system': 'nats',
    'messaging.operation.type': 'process',
    'messaging.message.id': callId,
    'asyncfn.call_id': callId,
    'asyncfn.attempt': 1,
    'faas.invoked_name': 'work',
    'http.response.status_code': 200,
  });
  t.equal(consumer?.status.code, SpanStatusCode.UNSET);

  const call = spans.find((s) => s.name === 'invoke work');
  t.equal(call?.kind, SpanKind.CLIENT);
  t.equal(parentOf(call), idOf(consumer), 'the function call is a child of processing');
  t.match(call?.attributes, { 'http.request.method': 'POST', 'http.response.status_code': 200, 'url.full': `${fn.url}/?x=REDACTED` });
  const functionSaw = fn.requests[0]?.headers;
  t.equal(functionSaw?.traceparent, `00-${caller.traceId}-${idOf(call)}-01`, "the function got the client span's traceparent");
  t.equal(functionSaw?.tracestate, 'caller=1', "and the caller's tracestate");

  const delivered = spans.find((s) => s.name === 'callback work');
  t.equal(delivered?.kind, SpanKind.CLIENT);
  t.equal(parentOf(delivered), idOf(producer), "the callback is parented on the envelope's trace context");
  t.match(delivered?.attributes, { 'http.request.method': 'POST', 'http.response.status_code': 200, 'asyncfn.call_id': callId });
  t.equal(callback.headers.traceparent, `00-${caller.traceId}-${idOf(delivered)}-01`, 'the receiver got the callback span as parent');
});

t.test('async: a retried attempt is a second process span in the same trace', async (t) => {
  const tracing = await tracingFor(t);
  const { fn, sink, gateway } = await startStack(t, {
    handler: scriptedHandler((n) => ({ status: n === 1 ? 502 : 200 })),
    config: { retry: { maxAttempts: 2, initialWaitMs: 20, maxWaitMs: 50 } },
  });
  const caller = callerContext();

  const res = await request(`${gateway.url}/async-function/work`, {
    method: 'POST',
    body: 'again',
    headers: { traceparent: caller.traceparent, 'x-callback-url': sink.url },
  });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  const callback = await sink.waitForCallId(String(res.headers['x-call-id']));
  t.equal(callback.headers['x-retry'], '1');
  const spans = await tracing.waitForSpans((s) => s.length >= 7 && s.some((span) => span.name === 'callback work'), 'seven spans, the callback span among them');
  t.equal(spans.length, 7, spans.map((s) => s.name).join(', '));
  t.ok(
    spans.every((s) => s.spanContext().traceId === caller.traceId),
    'one trace',
  );

  const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
  const attempts = spans.filter((s) => s.kind === SpanKind.CONSUMER);
  t.equal(attempts.length, 2, 'one process span per attempt');
  t.same(
    attempts.map((s) => s.attributes['asyncfn.attempt']),
    [1, 2],
  );
  t.same(attempts.map(parentOf), [idOf(producer), idOf(producer)], 'both continue the producer span');
  t.same(
    attempts.map((s) => s.attributes['http.response.status_code']),
    [502, 200],
  );
  t.same(
    attempts.map((s) => s.status.code),
    [SpanStatusCode.ERROR, SpanStatusCode.UNSET],
    'the 502 attempt failed',
  );

  const calls = spans.filter((s) => s.name === 'invoke work');
  t.same(calls.map(parentOf), attempts.map(idOf), 'each function call is a child of its attempt');
  t.same(
    fn.requests.map((r) => r.headers.traceparent),
    calls.map((c) => `00-${caller.traceId}-${idOf(c)}-01`),
    'each attempt sent its own client span as traceparent',
  );
});

t.test('durable callbacks: every delivery attempt, from the worker or the callback stream, is a client span in the trace', async (t) => {
  const tracing = await tracingFor(t);
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const sink = await startCallbackSink(t, (n) => (n === 1 ? 503 : 200));
  const resolver = resolverFor({ work: fn.url });
  const config = configFor(nats.url, { callback: { initialWaitMs: 20, maxWaitMs: 50, maxAttempts: 3 } });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const caller = callerContext();

  const res = await request(`${gateway.url}/async-function/work`, {
    method: 'POST',
    body: 'later',
    headers: { traceparent: caller.traceparent, 'x-callback-url': sink.url },
  });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  await sink.waitFor(2);
  const spans = await tracing.waitForSpans((s) => s.filter((span) => span.name === 'callback work').length === 2, 'two callback spans');
  const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
  const deliveries = spans.filter((s) => s.name === 'callback work');
  t.same(
    deliveries.map((s) => s.spanContext().traceId),
    [caller.traceId, caller.traceId],
    "both in the caller's trace",
  );
  t.same(deliveries.map(parentOf), [idOf(producer), idOf(producer)], 'the stored callback kept the trace context');
  t.same(
    deliveries.map((s) => s.attributes['http.response.status_code']),
    [503, 200],
  );
  t.same(
    deliveries.map((s) => s.status.code),
    [SpanStatusCode.ERROR, SpanStatusCode.UNSET],
  );
  t.same(
    sink.received.map((r) => r.headers.traceparent),
    deliveries.map((d) => `00-${caller.traceId}-${idOf(d)}-01`),
    'each delivery sent its own span as traceparent',
  );
});

t.test('sync: the proxied call is a client span below the server span; the function gets its traceparent', async (t) => {
  const tracing = await tracingFor(t);
  const { fn, gateway } = await startStack(t, { worker: false });
  const caller = callerContext();

  const res = await request(`${gateway.url}/function/work/sub`, { method: 'POST', body: 'sync', headers: { traceparent: caller.traceparent } });
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'sync');
  const spans = await tracing.waitForSpans((s) => s.length >= 2, 'the server and client spans');

  const server = spans.find((s) => s.kind === SpanKind.SERVER);
  const call = spans.find((s) => s.kind === SpanKind.CLIENT);
  t.equal(server?.name, 'POST /function/*');
  t.equal(server?.spanContext().traceId, caller.traceId);
  t.equal(parentOf(server), caller.spanId);
  t.match(server?.attributes, { 'http.response.status_code': 200, 'faas.invoked_name': 'work', 'url.path': '/function/work/sub' });
  t.equal(call?.name, 'invoke work');
  t.equal(call?.spanContext().traceId, caller.traceId);
  t.equal(parentOf(call), idOf(server));
  t.match(call?.attributes, { 'http.response.status_code': 200, 'url.full': `${fn.url}/sub` });
  t.equal(fn.requests[0]?.headers.traceparent, `00-${caller.traceId}-${idOf(call)}-01`);
});

t.test('without a caller traceparent the gateway starts a new trace', async (t) => {
  const tracing = await tracingFor(t);
  const { fn, gateway } = await startStack(t, { worker: false });

  const res = await request(`${gateway.url}/function/work`, { method: 'POST', body: 'x' });
  await res.body.dump();
  const spans = await tracing.waitForSpans((s) => s.length >= 2, 'the server and client spans');
  const server = spans.find((s) => s.kind === SpanKind.SERVER);
  t.equal(server?.parentSpanContext, undefined, 'a root span');
  t.equal(traceIdOf(String(fn.requests[0]?.headers.traceparent)), server?.spanContext().traceId);
});

t.test("with tracing off the caller's trace context is still stored in the envelope, for the worker's logs", async (t) => {
  t.notOk(tracer().startSpan('probe').isRecording(), 'no SDK installed');
  const { nats, gateway, config } = await startStack(t, { worker: false });
  const caller = callerContext();

  const res = await request(`${gateway.url}/async-function/work`, {
    method: 'POST',
    body: 'x',
    headers: { traceparent: caller.traceparent, tracestate: 'caller=1' },
  });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const stored = await (await jetstreamManager(nc)).streams.getMessage(config.queue.stream, { seq: 1 });
  const invocation = decodeEnvelope(stored!.header, stored!.data);
  t.equal(invocation.traceparent, caller.traceparent, "the caller's traceparent, as sent");
  t.equal(invocation.tracestate, 'caller=1');

  const bad = await request(`${gateway.url}/async-function/work`, { method: 'POST', body: 'x', headers: { traceparent: 'not-a-traceparent' } });
  t.equal(bad.statusCode, 202);
  await bad.body.dump();
  const second = await (await jetstreamManager(nc)).streams.getMessage(config.queue.stream, { seq: 2 });
  t.equal(decodeEnvelope(second!.header, second!.data).traceparent, undefined, 'an invalid one is not stored');
});
