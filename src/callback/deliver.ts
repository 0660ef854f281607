import { request, type Dispatcher } from 'undici';
import type { CallbackRequest } from '../../actors/invocation.types.js';
import { durationSeconds, unixNanos } from '../http/headers.js';
import { withTimeout } from '../http/client.js';
import { AsyncFnError } from '../errors.js';
import { TelemetryAttributes as A } from '../telemetry/attributes.js';
import { contextOf, endSpan, errorFailure, injectHeaders, startClientSpan } from '../telemetry/spans.js';

export interface DeliverCallbackDeps {
  readonly dispatcher: Dispatcher;
  /** Longest one callback POST may take, ms. */
  readonly timeoutMs: number;
  /** Sent as `User-Agent: asyncfn-queue-worker/<version>`. */
  readonly version: string;
}

/** The callback receiver did not answer with a 2xx. */
export class CallbackFailedError extends AsyncFnError {
  readonly code = 'ASYNCFN_ERR_CALLBACK_FAILED';
  /** @param status the receiver's answer; undefined when it could not be reached or timed out. */
  constructor(reason: string, readonly status?: number, opts?: ErrorOptions) {
    super(`callback failed: ${reason}`, opts);
    this.name = 'CallbackFailedError';
  }
}

/** The headers of a callback request, as the OpenFaaS queue-worker sends them (plus X-Retry*). */
export function callbackHeaders(req: CallbackRequest, version: string): Record<string, string> {
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
  if (outcome.contentType) headers['content-type'] = outcome.contentType;
  return headers;
}

/**
 * POSTs the function's result to X-Callback-Url; rejects unless the receiver answers 2xx. Each
 * POST is a CLIENT span in the invocation's trace (parented on the envelope's traceparent, so the
 * durable retrier's later attempts join it too), and the receiver gets its `traceparent`.
 */
export function deliverCallback(deps: DeliverCallbackDeps) {
  return async (req: CallbackRequest, signal?: AbortSignal): Promise<void> => {
    const url = req.invocation.callbackUrl;
    if (!url) return;
    const parent = contextOf(req.invocation);
    const span = startClientSpan(`callback ${req.invocation.functionName}`, parent, 'POST', url);
    if (span.isRecording()) {
      span.setAttributes({ [A.callId]: req.invocation.callId, [A.faasInvokedName]: req.invocation.functionName, [A.attempt]: req.attempt });
    }
    const headers = callbackHeaders(req, deps.version);
    injectHeaders(span, parent, headers);
    let status: number;
    try {
      const response = await request(url, {
        method: 'POST',
        headers,
        body: req.outcome.body,
        signal: withTimeout(signal, deps.timeoutMs),
        dispatcher: deps.dispatcher,
      });
      status = response.statusCode;
      await response.body.dump();
    } catch (err) {
      endSpan(span, undefined, errorFailure(err));
      throw new CallbackFailedError(err instanceof Error ? err.message : String(err), undefined, { cause: err });
    }
    const accepted = status >= 200 && status < 300;
    endSpan(span, status, accepted ? undefined : { type: String(status) });
    if (!accepted) throw new CallbackFailedError(`receiver answered ${status}`, status);
  };
}
