import { trace, type Context, type Span } from '@opentelemetry/api';
import type { FunctionOutcome, FunctionPolicy, FunctionRequest, Invocation } from '../../actors/invocation.types.js';
import { firstHeader, isForwardable, toHeaderRecord, unixNanos } from '../http/headers.js';
import type { HttpDispatcher } from '../http/client.js';
import { exchange, ExchangeTimeoutError, type ExchangeReader, type ExchangeResponse } from '../http/exchange.js';
import { MESSAGING_SYSTEM, TelemetryAttributes as A } from '../telemetry/attributes.js';
import { CONSUMER, contextOf, endSpan, errorFailure, injectHeaders, startClientSpan, statusFailure, tracer, tracingActive, UNTRACED } from '../telemetry/spans.js';
import { describeError, PathRefusedError } from '../errors.js';
import { functionUrl, type FunctionResolver } from './resolver.js';
import { callTimeout, type CallTimeout } from './timeout.js';
import type { AbortLike } from '../../actors/abort-handle.js';

export interface InvokeFunctionDeps {
  readonly resolver: FunctionResolver;
  readonly dispatcher: HttpDispatcher;
  /**
   * Longest a function call may take, ms (OpenFaaS `upstream_timeout`): the default, and the cap
   * of a function's timeout annotation and of a caller's X-Timeout (src/functions/timeout.ts).
   */
  readonly upstreamTimeoutMs: number;
  /**
   * A function's own policy from its annotations (functionPolicies() of annotations.ts, over the
   * queue's retry policy); absent, outcomes carry none and the queue's policy applies.
   */
  readonly policyFor?: ((annotations: Readonly<Record<string, string>>) => FunctionPolicy) | undefined;
  /** The queue these calls are pulled from: names the span "process <queue>"; absent = "process". */
  readonly queue?: string | undefined;
  /** Wall clock, unix ms; injectable for tests. */
  readonly now?: () => number;
  /** Where bodies too large for a message are read from (claim check); absent, such an invocation gets a 410. */
  readonly payloads?: PayloadReader | undefined;
  /**
   * The progress URL of one attempt of `callId`, whose call may last until `attemptEndsAtMs` (unix
   * ms): sent to the function as X-Asyncfn-Progress-Url. Absent (no `gateway_public_url`): no URL,
   * and a caller's header of that name is dropped too, so the function never mistakes it for ours.
   */
  readonly progressUrl?: ((callId: string, attemptEndsAtMs: number) => string | undefined) | undefined;
}

/** Reads a stored body (src/queue/payload-store.ts): its size and its bytes as a stream; undefined when gone. */
export interface PayloadReader {
  get(name: string): Promise<{ readonly size: number; readonly chunks: AsyncIterable<Uint8Array> } | undefined>;
}

/** The status asyncfn reports when an invocation's stored body is gone (expired or purged): not retried by default. */
export const BODY_GONE_STATUS = 410;

/** The header a function finds its progress URL in (src/status/progress-signing.ts signs it). */
export const PROGRESS_URL_HEADER = 'x-asyncfn-progress-url';

const encoder = new TextEncoder();

/**
 * Calls the function for one attempt and turns whatever happens into a {@link FunctionOutcome}.
 * Only an abort by the caller (the machine left `invoking`) rejects.
 *
 * Each attempt is a CONSUMER span "process <queue>" whose parent is the PRODUCER span the gateway
 * put in the envelope, so every attempt of an invocation lands in the caller's trace; the HTTP
 * call is a CLIENT span below it, and the function gets its `traceparent`.
 */
export function invokeFunction(deps: InvokeFunctionDeps) {
  const now = deps.now ?? Date.now;
  const spanName = deps.queue === undefined ? 'process' : `process ${deps.queue}`;

  /** `attempt` is the attempt's span context; undefined while tracing is off (no span, context or Map is made then). */
  const callFunction = async (invocation: Invocation, attempt: Context | undefined, signal: AbortLike | undefined): Promise<FunctionOutcome> => {
    const startedAtMs = now();
    const started = performance.now();

    const ref = { name: invocation.functionName, namespace: invocation.namespace };
    const fn = deps.resolver.resolveNow?.(ref) ?? (await deps.resolver.resolve(ref));
    if (!fn) {
      // Removed since it was enqueued: a definitive answer, not a transport failure.
      return answeredByAsyncfn(404, `function "${invocation.functionName}" not found`, startedAtMs, started, undefined);
    }
    // Read before the call: the machine decides on the outcome with the function's own policy.
    const functionPolicy = deps.policyFor?.(fn.annotations);
    let url: string;
    try {
      url = functionUrl(fn, invocation.path, invocation.query);
    } catch (err) {
      if (!(err instanceof PathRefusedError)) throw err;
      // The gateway refuses such a path; this message came from elsewhere. The function is not
      // called: a 400 (a definitive answer, retried only if 400 is in http_retry_codes).
      return answeredByAsyncfn(400, `function "${invocation.functionName}" not called: ${err.message}`, startedAtMs, started, functionPolicy);
    }
    const call = attempt === undefined ? UNTRACED : startClientSpan(`invoke ${invocation.functionName}`, attempt, invocation.method, url);
    if (call.isRecording()) call.setAttributes({ [A.callId]: invocation.callId, [A.faasInvokedName]: invocation.functionName });
    // The caller's headers, then asyncfn's over them (one object, not a copy of another). Only those
    // a gateway forwards: a message in the stream need not have come through one (no Host of its own).
    const headers = toHeaderRecord(invocation.headers, isForwardable);
    headers['x-call-id'] = invocation.callId;
    headers['x-start-time'] = unixNanos(startedAtMs);
    if (invocation.parentCallId !== undefined) headers['x-parent-call-id'] = invocation.parentCallId;
    if (attempt !== undefined) injectHeaders(call, attempt, headers);
    const timeout = callTimeout(deps.upstreamTimeoutMs, functionPolicy?.timeout, invocation.timeoutMs);
    let body: Uint8Array | AsyncIterable<Uint8Array> | null = invocation.body.length > 0 ? invocation.body : null;
    if (invocation.bodyRef !== undefined) {
      // Each attempt reads the object again, a chunk at a time as the function's socket takes it.
      let stored;
      try {
        stored = await deps.payloads?.get(invocation.bodyRef.name);
      } catch (err) {
        endSpan(call, undefined, errorFailure(err));
        const unread = `could not read the body of "${invocation.callId}" from the payload bucket: ${describe(err)}`;
        return answeredByAsyncfn(503, unread, startedAtMs, started, functionPolicy, true);
      }
      if (!stored) {
        const gone = `the body of "${invocation.callId}" (object ${invocation.bodyRef.name}) is no longer in the payload bucket`;
        endSpan(call, undefined, { type: String(BODY_GONE_STATUS), message: gone });
        return answeredByAsyncfn(BODY_GONE_STATUS, gone, startedAtMs, started, functionPolicy);
      }
      headers['content-length'] = String(stored.size);
      body = stored.chunks;
    }
    for (const name of Object.keys(headers)) if (name.toLowerCase() === PROGRESS_URL_HEADER) delete headers[name];
    // One HMAC per attempt; the URL is good for as long as this attempt may run.
    const progressUrl = deps.progressUrl?.(invocation.callId, startedAtMs + timeout.ms);
    if (progressUrl !== undefined) headers[PROGRESS_URL_HEADER] = progressUrl;
    // Returned, not awaited: while the function runs, this frame is over and only the reader is kept.
    return exchange(
      deps.dispatcher,
      { url, method: invocation.method, headers, body },
      { timeoutMs: timeout.ms, signal },
      new FunctionCall(invocation.functionName, call, startedAtMs, started, timeout, functionPolicy, signal),
    );
  };

  const traced = async ({ invocation, attempt }: FunctionRequest, signal?: AbortLike): Promise<FunctionOutcome> => {
    const parent = contextOf(invocation);
    const span = tracer().startSpan(spanName, CONSUMER, parent);
    if (span.isRecording()) setConsumerAttributes(span, invocation, attempt, deps.queue);
    try {
      const outcome = await callFunction(invocation, trace.setSpan(parent, span), signal);
      const failure =
        outcome.transportError !== undefined
          ? { type: outcome.status === 504 ? 'timeout' : String(outcome.status), message: outcome.transportError }
          : statusFailure(outcome.status, 500);
      endSpan(span, outcome.status, failure);
      return outcome;
    } catch (err) {
      endSpan(span, undefined, errorFailure(err));
      throw err;
    }
  };

  // Tracing off: the call alone, without the attempt's span, its context (a Map each) or an async
  // frame around it; each would be a no-op, and is held for as long as the function runs.
  return (request: FunctionRequest, signal?: AbortLike): Promise<FunctionOutcome> =>
    tracingActive() ? traced(request, signal) : callFunction(request.invocation, undefined, signal);
}

/**
 * One function call in flight: what its outcome needs once the exchange ends, as one object (the
 * exchange's reader), instead of the frame of an async function suspended for the call's length.
 */
class FunctionCall implements ExchangeReader<FunctionOutcome> {
  constructor(
    readonly functionName: string,
    readonly span: Span,
    readonly startedAtMs: number,
    readonly started: number,
    readonly timeout: CallTimeout,
    readonly functionPolicy: FunctionPolicy | undefined,
    readonly signal: AbortLike | undefined,
  ) {}

  answered(response: ExchangeResponse): FunctionOutcome {
    endSpan(this.span, response.status, statusFailure(response.status, 400));
    return {
      status: response.status,
      contentType: firstHeader(response.headers, 'content-type'),
      contentEncoding: firstHeader(response.headers, 'content-encoding'),
      body: response.body,
      startedAtMs: this.startedAtMs,
      durationMs: performance.now() - this.started,
      retryAfter: firstHeader(response.headers, 'retry-after'),
      internal: response.headers['x-openfaas-internal'] !== undefined,
      functionPolicy: this.functionPolicy,
    };
  }

  /** A transport failure as an outcome; only an abort by the caller (the machine left `invoking`) rejects. */
  failed(err: unknown): FunctionOutcome {
    if (this.signal?.aborted) {
      endSpan(this.span, undefined, { type: 'aborted', message: 'the attempt was cancelled' });
      throw err;
    }
    if (err instanceof ExchangeTimeoutError) {
      const timedOut = `function "${this.functionName}" did not answer within ${this.timeout.setBy} (${this.timeout.ms} ms)`;
      endSpan(this.span, undefined, { type: 'timeout', message: timedOut });
      return answeredByAsyncfn(504, timedOut, this.startedAtMs, this.started, this.functionPolicy, true);
    }
    endSpan(this.span, undefined, errorFailure(err));
    // OpenFaaS: a function that cannot be reached is reported as 503.
    const unreachable = `could not reach function "${this.functionName}": ${describe(err)}`;
    return answeredByAsyncfn(503, unreachable, this.startedAtMs, this.started, this.functionPolicy, true);
  }
}

/**
 * An outcome asyncfn gives in the function's place: it was not called (a definitive answer), or
 * did not answer (`transport`: the message is then the outcome's `transportError` too).
 */
function answeredByAsyncfn(
  status: number,
  message: string,
  startedAtMs: number,
  started: number,
  functionPolicy: FunctionPolicy | undefined,
  transport = false,
): FunctionOutcome {
  return {
    status,
    contentType: 'text/plain; charset=utf-8',
    body: encoder.encode(`${message}\n`),
    startedAtMs,
    durationMs: performance.now() - started,
    transportError: transport ? message : undefined,
    functionPolicy,
  };
}

function setConsumerAttributes(span: Span, invocation: Invocation, attempt: number, queue: string | undefined): void {
  span.setAttributes({
    [A.messagingSystem]: MESSAGING_SYSTEM,
    [A.messagingOperationType]: 'process',
    [A.messagingOperationName]: 'process',
    [A.messagingMessageId]: invocation.callId,
    [A.callId]: invocation.callId,
    [A.faasInvokedName]: invocation.functionName,
    [A.namespace]: invocation.namespace,
    [A.attempt]: attempt,
  });
  if (queue !== undefined) span.setAttribute(A.queue, queue);
}

function describe(err: unknown): string {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? `${describeError(err)} (${code})` : describeError(err);
}
