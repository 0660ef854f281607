import {
  INVALID_SPAN_CONTEXT,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type SpanOptions,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { TelemetryAttributes as A } from './attributes.js';

/**
 * Span helpers for the hot paths (gateway routes, publisher, function call, callback). They use
 * only `@opentelemetry/api`: while tracing is off its no-op tracer and propagator make each call
 * a few field reads, and attributes are built only for recording spans.
 */

export const TRACER_NAME = 'asyncfn';

let cachedProvider: TracerProvider | undefined;
let cachedTracer: Tracer | undefined;

/** What the global provider delegates to while no SDK is registered (the API's no-op provider). */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * True while a tracer provider is registered (tracing configured and started). The hot paths ask
 * first and skip every span, context and listener otherwise: each would be a no-op, but building
 * them costs allocations on every request.
 */
export function tracingActive(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/** The span of work that is not traced: recording nothing, with an invalid context (nothing propagates). */
export const UNTRACED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** asyncfn's tracer from the global provider; re-fetched only when the provider is replaced. */
export function tracer(): Tracer {
  // trace.disable() (tests, shutdown) installs a new global proxy: a tracer of the old one would
  // keep delegating to the old SDK.
  const provider = trace.getTracerProvider();
  if (provider !== cachedProvider || cachedTracer === undefined) {
    cachedProvider = provider;
    cachedTracer = provider.getTracer(TRACER_NAME);
  }
  return cachedTracer;
}

export const SERVER: SpanOptions = Object.freeze({ kind: SpanKind.SERVER });
export const CLIENT: SpanOptions = Object.freeze({ kind: SpanKind.CLIENT });
export const PRODUCER: SpanOptions = Object.freeze({ kind: SpanKind.PRODUCER });
export const CONSUMER: SpanOptions = Object.freeze({ kind: SpanKind.CONSUMER });

/** W3C trace context as the invocation envelope carries it (`Invocation.traceparent`/`tracestate`). */
export interface TraceCarrier {
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

const carrierGetter: TextMapGetter<TraceCarrier> = {
  keys: () => ['traceparent', 'tracestate'],
  get: (carrier, key) => (key === 'traceparent' ? carrier.traceparent : key === 'tracestate' ? carrier.tracestate : undefined),
};

const carrierSetter: TextMapSetter<TraceCarrier> = {
  set: (carrier, key, value) => {
    if (key === 'traceparent') carrier.traceparent = value;
    else if (key === 'tracestate') carrier.tracestate = value;
  },
};

/** The context an envelope (or anything with `traceparent`/`tracestate`) continues; ROOT when none. */
export function contextOf(carrier: Readonly<TraceCarrier>): Context {
  return propagation.extract(ROOT_CONTEXT, carrier, carrierGetter);
}

/** `traceparent`/`tracestate` naming `span` (in `parent`'s context), or undefined when tracing is off. */
export function traceCarrierOf(span: Span, parent: Context): TraceCarrier | undefined {
  if (!trace.isSpanContextValid(span.spanContext())) return undefined;
  const carrier: TraceCarrier = {};
  propagation.inject(trace.setSpan(parent, span), carrier, carrierSetter);
  return carrier.traceparent === undefined ? undefined : carrier;
}

type IncomingHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * The caller's own `traceparent`/`tracestate` when the traceparent is valid. The gateway puts them
 * in the envelope even while it does not trace itself, so the worker's logs and spans still join
 * the caller's trace; a traced gateway replaces them with its PRODUCER span.
 */
export function callerTraceCarrier(headers: IncomingHeaders): TraceCarrier | undefined {
  const traceparent = first(headers.traceparent);
  if (traceIdOf(traceparent) === undefined) return undefined;
  return { traceparent, tracestate: first(headers.tracestate) };
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The context of a caller's `traceparent`/`tracestate` request headers; ROOT when absent or off. */
export function contextFromHeaders(headers: IncomingHeaders): Context {
  return propagation.extract(ROOT_CONTEXT, headers);
}

/**
 * Writes the trace headers that make `span` the parent of the next hop into outgoing `headers`,
 * replacing a caller's own `traceparent`. Leaves them untouched while tracing is off.
 */
export function injectHeaders(span: Span, parent: Context, headers: Record<string, string | string[]>): void {
  if (!trace.isSpanContextValid(span.spanContext())) return;
  propagation.inject(trace.setSpan(parent, span), headers);
}

/**
 * A SERVER span for a gateway request, continuing the caller's trace; `context` has it active.
 * @param target the request target as received (path and query)
 */
export function startServerSpan(method: string, route: string, target: string, headers: IncomingHeaders): { span: Span; context: Context } {
  const parent = contextFromHeaders(headers);
  const span = tracer().startSpan(`${method} ${route}`, SERVER, parent);
  if (span.isRecording()) {
    const query = target.indexOf('?');
    span.setAttributes({ [A.httpRequestMethod]: method, [A.httpRoute]: route, [A.urlPath]: query === -1 ? target : target.slice(0, query) });
  }
  return { span, context: trace.setSpan(parent, span) };
}

/** A CLIENT span for an outgoing HTTP request. */
export function startClientSpan(name: string, parent: Context, method: string, url: string): Span {
  const span = tracer().startSpan(name, CLIENT, parent);
  if (span.isRecording()) {
    const attributes: Record<string, string | number> = { [A.httpRequestMethod]: method, [A.urlFull]: redactedUrl(url) };
    if (URL.canParse(url)) {
      const { hostname, port, protocol } = new URL(url);
      attributes[A.serverAddress] = hostname;
      attributes[A.serverPort] = port === '' ? (protocol === 'https:' ? 443 : 80) : Number(port);
    }
    span.setAttributes(attributes);
  }
  return span;
}

/** Why a span failed: `error.type` and a status message. */
export interface SpanFailure {
  readonly type: string;
  readonly message?: string | undefined;
}

/** A failure for an HTTP status at or above `minStatus` (500 for servers, 400 for clients), else undefined. */
export function statusFailure(statusCode: number, minStatus: number): SpanFailure | undefined {
  return statusCode >= minStatus ? { type: String(statusCode) } : undefined;
}

/** A failure for a thrown error: its string `code` (e.g. ASYNCFN_ERR_*, UND_ERR_*) or its name. */
export function errorFailure(err: unknown): SpanFailure {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { type: typeof code === 'string' ? code : err.name, message: err.message };
  }
  return { type: '_OTHER', message: String(err) };
}

/** Ends `span`, recording the HTTP status when known and marking it ERROR when `failure` is given. */
export function endSpan(span: Span, statusCode?: number, failure?: SpanFailure): void {
  if (span.isRecording()) {
    if (statusCode !== undefined) span.setAttribute(A.httpResponseStatusCode, statusCode);
    if (failure) {
      span.setAttribute(A.errorType, failure.type);
      span.setStatus(failure.message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message: failure.message });
    }
  }
  span.end();
}

/**
 * A URL fit for `url.full`: credentials and every query value replaced by REDACTED (semantic
 * conventions), since callback URLs often carry tokens.
 */
export function redactedUrl(url: string): string {
  if (!URL.canParse(url)) return 'REDACTED';
  const parsed = new URL(url);
  if (parsed.username !== '') parsed.username = 'REDACTED';
  if (parsed.password !== '') parsed.password = 'REDACTED';
  if (parsed.search !== '') {
    const redacted = new URLSearchParams();
    for (const key of parsed.searchParams.keys()) redacted.append(key, 'REDACTED');
    parsed.search = redacted.toString();
  }
  return parsed.toString();
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The trace id of a W3C `traceparent` ("00-<trace id>-<span id>-<flags>"), for log lines;
 * undefined when absent or invalid (all-zero ids, version ff, extra fields on version 00).
 */
export function traceIdOf(traceparent?: string): string | undefined {
  if (traceparent === undefined) return undefined;
  const match = TRACEPARENT.exec(traceparent.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, , rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return traceId;
}
