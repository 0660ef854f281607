import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import t from 'tap';
import {
  callerTraceCarrier,
  contextFromHeaders,
  contextOf,
  endSpan,
  errorFailure,
  injectHeaders,
  redactedUrl,
  startClientSpan,
  startServerSpan,
  statusFailure,
  traceCarrierOf,
  tracer,
  tracingActive,
  UNTRACED,
} from '../../../src/telemetry/spans.js';
import { startTracing } from '../../../src/telemetry/tracing.js';
import { installInMemoryTracing } from '../../helpers/tracing.js';

const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const CALLER = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;

// Tests in this file share the process's global OpenTelemetry state: they run one after another
// and each removes what it installed.

t.test('tracingActive: false until a provider is registered, true while it is, false again after shutdown', async (t) => {
  t.notOk(tracingActive(), 'no SDK started: the hot paths skip their spans');
  const tracing = await installInMemoryTracing();
  let shut = false;
  t.teardown(() => (shut ? undefined : tracing.shutdown()));
  t.ok(tracingActive(), 'an SDK is registered');
  await tracing.shutdown();
  shut = true;
  t.notOk(tracingActive(), 'shut down: the global provider is the no-op one again');
  t.notOk(UNTRACED.isRecording());
  t.notOk(trace.isSpanContextValid(UNTRACED.spanContext()), 'the untraced span propagates nothing');
});

t.test('with tracing off nothing is recorded, extracted or injected', async (t) => {
  const tracing = await startTracing(undefined);
  t.teardown(() => tracing.shutdown());
  const { span, context } = startServerSpan('POST', '/async-function/*', '/async-function/f?x=1', { traceparent: CALLER });
  t.notOk(span.isRecording());
  t.notOk(trace.isSpanContextValid(span.spanContext()), 'no propagator: the caller context is not even read');
  t.equal(traceCarrierOf(span, context), undefined);
  const headers: Record<string, string> = { traceparent: CALLER };
  injectHeaders(span, context, headers);
  t.same(headers, { traceparent: CALLER }, "the caller's own header passes through untouched");
  t.equal(trace.getSpan(contextOf({ traceparent: CALLER })), undefined);
  endSpan(span, 500, { type: '500' });
});

t.test('a caller trace is continued through the envelope and into outgoing headers', async (t) => {
  const tracing = await installInMemoryTracing();
  t.teardown(() => tracing.shutdown());

  const { span: server, context: serverCtx } = startServerSpan('POST', '/async-function/*', '/async-function/f?x=1', {
    traceparent: CALLER,
    tracestate: 'vendor=1',
  });
  t.ok(server.isRecording());
  t.equal(server.spanContext().traceId, CALLER_TRACE, "the caller's trace id is kept");

  const producer = tracer().startSpan('publish q', { kind: SpanKind.PRODUCER }, serverCtx);
  const carrier = traceCarrierOf(producer, serverCtx);
  t.equal(carrier?.traceparent, `00-${CALLER_TRACE}-${producer.spanContext().spanId}-01`, 'the envelope names the producer span');
  t.equal(carrier?.tracestate, 'vendor=1', "the caller's tracestate travels along");

  const remote = trace.getSpanContext(contextOf(carrier!));
  t.equal(remote?.traceId, CALLER_TRACE);
  t.equal(remote?.spanId, producer.spanContext().spanId);
  t.equal(remote?.isRemote, true);
  t.equal(trace.getSpan(contextOf({})), undefined, 'no traceparent: a root context');
  t.equal(contextOf({}), ROOT_CONTEXT);

  const consumerCtx = contextOf(carrier!);
  const client = startClientSpan('invoke f', consumerCtx, 'POST', 'http://user:pw@fn.local:8080/f?token=secret');
  const headers: Record<string, string | string[]> = { traceparent: CALLER, 'x-other': 'kept' };
  injectHeaders(client, consumerCtx, headers);
  t.equal(headers.traceparent, `00-${CALLER_TRACE}-${client.spanContext().spanId}-01`, "ours replaces the caller's traceparent");
  t.equal(headers['x-other'], 'kept');

  endSpan(client, 502, statusFailure(502, 400));
  endSpan(producer, undefined, errorFailure(Object.assign(new Error('nope'), { code: 'ASYNCFN_ERR_X' })));
  endSpan(server, 202, statusFailure(202, 500));

  const [c, p, s] = tracing.spans();
  t.equal(s?.name, 'POST /async-function/*');
  t.equal(s?.kind, SpanKind.SERVER);
  t.equal(s?.parentSpanContext?.spanId, CALLER_SPAN);
  t.same(s?.attributes, {
    'http.request.method': 'POST',
    'http.route': '/async-function/*',
    'url.path': '/async-function/f',
    'http.response.status_code': 202,
  });
  t.equal(s?.status.code, SpanStatusCode.UNSET);
  t.equal(p?.parentSpanContext?.spanId, s?.spanContext().spanId);
  t.equal(p?.status.code, SpanStatusCode.ERROR);
  t.equal(p?.attributes['error.type'], 'ASYNCFN_ERR_X');
  t.equal(c?.parentSpanContext?.spanId, p?.spanContext().spanId, 'the client span is a child of the remote producer span');
  t.equal(c?.kind, SpanKind.CLIENT);
  t.equal(c?.status.code, SpanStatusCode.ERROR);
  t.same(c?.attributes, {
    'http.request.method': 'POST',
    'url.full': 'http://REDACTED:REDACTED@fn.local:8080/f?token=REDACTED',
    'server.address': 'fn.local',
    'server.port': 8080,
    'http.response.status_code': 502,
    'error.type': '502',
  });
});

t.test('contextFromHeaders ignores a malformed traceparent', async (t) => {
  const tracing = await installInMemoryTracing();
  t.teardown(() => tracing.shutdown());
  t.equal(trace.getSpan(contextFromHeaders({ traceparent: 'garbage' })), undefined);
  t.equal(trace.getSpanContext(contextFromHeaders({ traceparent: [CALLER, 'x'] }))?.traceId, CALLER_TRACE, 'first of repeated headers');
});

t.test('tracer() follows a provider installed after an earlier one was shut down', async (t) => {
  const first = await installInMemoryTracing();
  tracer().startSpan('one').end();
  await first.shutdown();
  t.notOk(tracer().startSpan('between').isRecording(), 'nothing records between installs');
  const second = await installInMemoryTracing();
  t.teardown(() => second.shutdown());
  tracer().startSpan('two').end();
  t.same(
    first.spans().map((s) => s.name),
    ['one'],
  );
  t.same(
    second.spans().map((s) => s.name),
    ['two'],
  );
});

t.test('helpers', async (t) => {
  t.equal(redactedUrl('https://h/p'), 'https://h/p');
  t.equal(redactedUrl('http://h:1/p?a=1&a=2&b'), 'http://h:1/p?a=REDACTED&a=REDACTED&b=REDACTED');
  t.equal(redactedUrl('not a url'), 'REDACTED');
  t.equal(statusFailure(499, 500), undefined);
  t.same(statusFailure(500, 500), { type: '500' });
  t.same(errorFailure(new TypeError('bad')), { type: 'TypeError', message: 'bad' });
  t.same(errorFailure('plain'), { type: '_OTHER', message: 'plain' });
});

t.test("callerTraceCarrier keeps a caller's valid trace context only", async (t) => {
  t.same(callerTraceCarrier({ traceparent: CALLER, tracestate: 'v=1' }), { traceparent: CALLER, tracestate: 'v=1' });
  t.same(callerTraceCarrier({ traceparent: [CALLER, 'other'] }), { traceparent: CALLER, tracestate: undefined });
  t.equal(callerTraceCarrier({ traceparent: 'bogus', tracestate: 'v=1' }), undefined);
  t.equal(callerTraceCarrier({}), undefined);
});
