import type { KeyObject } from 'node:crypto';
import type { CallbackRequest } from '../../actors/invocation.types.js';
import { durationSeconds, unixNanos } from '../http/headers.js';
import type { HttpDispatcher } from '../http/client.js';
import { exchange, ExchangeTimeoutError, type ExchangeReader, type ExchangeResponse } from '../http/exchange.js';
import { AsyncFnError, describeError } from '../errors.js';
import { TelemetryAttributes as A } from '../telemetry/attributes.js';
import type { Span } from '@opentelemetry/api';
import { contextOf, endSpan, errorFailure, injectHeaders, startClientSpan } from '../telemetry/spans.js';
import { signWebhook, webhookIdOf } from './signing.js';
import { CallbackRefusedError } from './target-guard.js';
import type { AbortLike } from '../../actors/abort-handle.js';

/** Standard Webhooks signing of every callback; absent when `callback_signing` is off. */
export interface CallbackSigning {
  /** The keys from callback-signing-secret; each adds one signature (several during a rotation). */
  readonly secrets: readonly KeyObject[];
  /** The clock for `webhook-timestamp`, read at each attempt, unix ms. Default Date.now. */
  readonly nowMs?: () => number;
}

export interface DeliverCallbackDeps {
  readonly dispatcher: HttpDispatcher;
  /**
   * Longest one callback POST may take, ms: `callback_timeout` for the durable retrier, the
   * shorter `callback_first_attempt_timeout` for the worker's direct attempt.
   */
  readonly timeoutMs: number;
  /** Sent as `User-Agent: asyncfn-queue-worker/<version>`. */
  readonly version: string;
  /** Sign callbacks (Standard Webhooks); unsigned when absent. */
  readonly signing?: CallbackSigning;
}

/** The callback receiver did not answer with a 2xx. */
export class CallbackFailedError extends AsyncFnError<'ASYNCFN_ERR_CALLBACK_FAILED'> {
  /** @param status the receiver's answer; undefined when it could not be reached or timed out. */
  constructor(
    reason: string,
    readonly status?: number,
    opts?: ErrorOptions,
  ) {
    super('ASYNCFN_ERR_CALLBACK_FAILED', [reason], opts);
  }
}

/**
 * The headers of a callback request, as the OpenFaaS queue-worker sends them (plus X-Retry*), and
 * with `signing` the Standard Webhooks `webhook-id` (from the call id), `webhook-timestamp` (now:
 * each attempt is signed afresh) and `webhook-signature` over exactly `req.outcome.body`.
 */
export function callbackHeaders(req: CallbackRequest, version: string, signing?: CallbackSigning): Record<string, string> {
  const { invocation, outcome } = req;
  const headers: Record<string, string> = {
    'x-call-id': invocation.callId,
    'x-function-name': invocation.functionName,
    'x-function-status': String(outcome.status),
    'x-start-time': unixNanos(outcome.startedAtMs),
    'x-duration-seconds': durationSeconds(outcome.durationMs),
    'x-retry': String(req.attempt - 1),
    'x-retry-max': String(Math.max(0, req.maxAttempts - 1)),
    'user-agent': `asyncfn-queue-worker/${version}`,
  };
  if (invocation.parentCallId !== undefined) headers['x-parent-call-id'] = invocation.parentCallId;
  if (invocation.batchId !== undefined) headers['x-batch-id'] = invocation.batchId;
  if (outcome.contentType) headers['content-type'] = outcome.contentType;
  if (outcome.contentEncoding) headers['content-encoding'] = outcome.contentEncoding;
  if (signing) {
    const nowMs = signing.nowMs ?? Date.now;
    Object.assign(
      headers,
      signWebhook({
        id: webhookIdOf(invocation.callId),
        timestampSeconds: Math.floor(nowMs() / 1000),
        body: outcome.body,
        secrets: signing.secrets,
      }),
    );
  }
  return headers;
}

/** One callback POST in flight: turns its end into nothing (a 2xx) or the error it rejects with. */
class CallbackPost implements ExchangeReader<void> {
  constructor(
    readonly span: Span,
    readonly timeoutMs: number,
  ) {}

  answered({ status }: ExchangeResponse): void {
    const accepted = status >= 200 && status < 300;
    endSpan(this.span, status, accepted ? undefined : { type: String(status) });
    // undici's dispatch follows no redirect (no redirect interceptor is composed): a 3xx is a
    // failed delivery, never a hop to wherever Location points, which the guard has not vetted.
    if (!accepted) throw new CallbackFailedError(`receiver answered ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`, status);
  }

  failed(err: unknown): never {
    endSpan(this.span, undefined, errorFailure(err));
    // The dispatcher's connect guard refused every address: no retry can change that.
    if (err instanceof CallbackRefusedError) throw err;
    // Its own words, so a log tells a silent receiver from one that refused the connection.
    if (err instanceof ExchangeTimeoutError) throw new CallbackFailedError(`no answer within ${this.timeoutMs} ms`, undefined, { cause: err });
    throw new CallbackFailedError(describeError(err), undefined, { cause: err });
  }
}

/**
 * POSTs the function's result to X-Callback-Url; rejects unless the receiver answers 2xx. Each
 * POST is a CLIENT span in the invocation's trace (parented on the envelope's traceparent, so the
 * durable retrier's later attempts join it too), and the receiver gets its `traceparent`.
 */
export function deliverCallback(deps: DeliverCallbackDeps) {
  return async (req: CallbackRequest, signal?: AbortLike): Promise<void> => {
    const url = req.invocation.callbackUrl;
    if (!url) return;
    const parent = contextOf(req.invocation);
    const span = startClientSpan(`callback ${req.invocation.functionName}`, parent, 'POST', url);
    if (span.isRecording()) {
      span.setAttributes({ [A.callId]: req.invocation.callId, [A.faasInvokedName]: req.invocation.functionName, [A.attempt]: req.attempt });
    }
    // Signed here, at each attempt, over the very Uint8Array handed to undici as the body.
    const headers = callbackHeaders(req, deps.version, deps.signing);
    injectHeaders(span, parent, headers);
    // Returned, not awaited: while the receiver answers, only the reader is kept.
    return exchange(
      deps.dispatcher,
      { url, method: 'POST', headers, body: req.outcome.body },
      { timeoutMs: deps.timeoutMs, signal, discardBody: true },
      new CallbackPost(span, deps.timeoutMs),
    );
  };
}
