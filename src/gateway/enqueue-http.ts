/**
 * `POST /async-function/<name>` in HTTP terms, apart from any server: the request's head and body
 * read into an {@link EnqueueRequest}, and an accepted result's 202 headers. The fastify route
 * (routes/async-function.ts) and the plain node:http path for the common request
 * (fast-enqueue.ts) both answer through these, so the two cannot drift apart.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Span } from '@opentelemetry/api';
import { parseFunctionRef, TIMEOUT_HEADER } from '../functions/index.js';
import type { HeaderPairs } from '../http/headers.js';
import { callerTraceCarrier } from '../telemetry/spans.js';
import type { EnqueueRequest, EnqueueResult } from './enqueue.js';
import { callbackUrlFrom, callerCallIdFrom, parseInvocationTarget } from './invocation-target.js';
import { concurrencyKeyFrom, idempotencyKeyFrom, notBeforeFrom, storeResultFrom, timeoutFrom } from './request-options.js';

/** The gateway's own header naming the invocation a chained one was called from. */
export const PARENT_CALL_ID_HEADER = 'x-parent-call-id';

export const ASYNC_PREFIX = '/async-function/';

/** An async request as received: what the enqueue request is read from. */
export interface AsyncRequestHead {
  readonly method: string;
  /** The request target as received (path and query). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The caller's headers that travel on to the function (forwarded-headers.ts). */
  readonly forwarded: HeaderPairs;
}

export interface EnqueueReadOptions {
  readonly defaultNamespace: string;
  /** Longest delay X-Delay-Seconds / X-Not-Before may ask for, ms (`max_delay`). */
  readonly maxDelayMs: number;
  /** Wall clock, unix ms. */
  readonly now: () => number;
}

/**
 * The request as the enqueue use case takes it: headers parsed and validated.
 * @throws BadRequestError (400) naming the header or path that is wrong
 */
export function enqueueRequestOf(head: AsyncRequestHead, body: Uint8Array, span: Span, opts: EnqueueReadOptions): EnqueueRequest {
  const { headers } = head;
  const target = parseInvocationTarget(head.url, ASYNC_PREFIX);
  const ref = parseFunctionRef(target.name, opts.defaultNamespace);
  const callerCallId = callerCallIdFrom(headers['x-call-id']);
  const callbackUrl = callbackUrlFrom(headers['x-callback-url']);
  const idempotencyKey = idempotencyKeyFrom(headers['idempotency-key']);
  const storeResult = storeResultFrom(headers['x-store-result']);
  const concurrencyKey = concurrencyKeyFrom(headers['x-concurrency-key']);
  const timeoutMs = timeoutFrom(headers[TIMEOUT_HEADER]);
  const enqueuedAtMs = opts.now();
  const notBeforeMs = notBeforeFrom(headers['x-delay-seconds'], headers['x-not-before'], enqueuedAtMs, opts.maxDelayMs);
  // The caller's trace context rides along; a tracing publisher replaces it with its PRODUCER span
  // (a child of the active server span).
  const callerTrace = callerTraceCarrier(headers);
  return {
    ref,
    rawName: target.name,
    method: head.method,
    path: target.path,
    query: target.query,
    // X-Parent-Call-Id is the gateway's to set, never a caller's. X-Timeout is asyncfn's to apply:
    // a function that read it too would cut its work short by its own rules.
    headers: withoutGatewayHeaders(head.forwarded),
    body,
    callerCallId,
    callbackUrl,
    idempotencyKey,
    concurrencyKey,
    storeResult,
    timeoutMs,
    enqueuedAtMs,
    notBeforeMs,
    traceparent: callerTrace?.traceparent,
    tracestate: callerTrace?.tracestate,
    span,
  };
}

const isGateways = ([name]: readonly [string, string]): boolean => name === PARENT_CALL_ID_HEADER || name === TIMEOUT_HEADER;

/** The forwarded headers without X-Parent-Call-Id and X-Timeout; the same array when it holds neither (the common request). */
function withoutGatewayHeaders(forwarded: HeaderPairs): HeaderPairs {
  return forwarded.some(isGateways) ? forwarded.filter((pair) => !isGateways(pair)) : forwarded;
}

/** The headers of the 202 that answers an accepted (or repeated) invocation. */
export function acceptedHeaders(result: Exclude<EnqueueResult, { outcome: 'refused' }>): Record<string, string> {
  const list = acceptedHeaderList(result);
  const headers: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) headers[list[i]!] = list[i + 1]!;
  return headers;
}

/** The same headers as node's flat list (`[name, value, …]`), which `res.writeHead` takes without an object to walk. */
export function acceptedHeaderList(result: Exclude<EnqueueResult, { outcome: 'refused' }>): string[] {
  if (result.outcome === 'duplicate') return ['idempotent-replayed', 'true', 'x-call-id', result.callId];
  if (result.parentCallId !== undefined) return [PARENT_CALL_ID_HEADER, result.parentCallId, 'x-call-id', result.callId];
  return ['x-call-id', result.callId];
}
