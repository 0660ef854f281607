import { request, type Dispatcher } from 'undici';
import type { FunctionOutcome, FunctionRequest } from '../../actors/invocation.types.js';
import { firstHeader, toHeaderRecord, unixNanos } from '../http/headers.js';
import { isTimeout, withTimeout } from '../http/client.js';
import { functionUrl, type FunctionResolver } from './resolver.js';

export interface InvokeFunctionDeps {
  readonly resolver: FunctionResolver;
  readonly dispatcher: Dispatcher;
  /** Longest a function call may take, ms (OpenFaaS `upstream_timeout`). */
  readonly upstreamTimeoutMs: number;
  /** Wall clock, unix ms; injectable for tests. */
  readonly now?: () => number;
}

const encoder = new TextEncoder();

/**
 * Calls the function for one attempt and turns whatever happens into a {@link FunctionOutcome}.
 * Only an abort by the caller (the machine left `invoking`) rejects.
 */
export function invokeFunction(deps: InvokeFunctionDeps) {
  const now = deps.now ?? Date.now;
  return async ({ invocation }: FunctionRequest, signal?: AbortSignal): Promise<FunctionOutcome> => {
    const startedAtMs = now();
    const started = performance.now();
    const failed = (status: number, transportError: string): FunctionOutcome => ({
      status,
      contentType: 'text/plain; charset=utf-8',
      body: encoder.encode(`${transportError}\n`),
      startedAtMs,
      durationMs: performance.now() - started,
      transportError,
    });

    const fn = await deps.resolver.resolve({ name: invocation.functionName, namespace: invocation.namespace });
    if (!fn) {
      // Removed since it was enqueued: a definitive answer, not a transport failure.
      return { ...failed(404, `function "${invocation.functionName}" not found`), transportError: undefined };
    }
    const timeoutSignal = withTimeout(signal, deps.upstreamTimeoutMs);
    const annotations = fn.annotations;
    try {
      const response = await request(functionUrl(fn, invocation.path, invocation.query), {
        method: invocation.method as Dispatcher.HttpMethod,
        headers: {
          ...toHeaderRecord(invocation.headers),
          'x-call-id': invocation.callId,
          'x-start-time': unixNanos(startedAtMs),
        },
        body: invocation.body.length > 0 ? invocation.body : null,
        signal: timeoutSignal,
        dispatcher: deps.dispatcher,
      });
      const body = new Uint8Array(await response.body.arrayBuffer());
      return {
        status: response.statusCode,
        contentType: firstHeader(response.headers, 'content-type'),
        body,
        startedAtMs,
        durationMs: performance.now() - started,
        retryAfter: firstHeader(response.headers, 'retry-after'),
        internal: response.headers['x-openfaas-internal'] !== undefined,
        annotations: fn.annotations,
      };
    } catch (err) {
      if (signal?.aborted) throw err;
      if (isTimeout(timeoutSignal)) {
        const timedOut = `function "${invocation.functionName}" did not answer within upstream_timeout (${deps.upstreamTimeoutMs} ms)`;
        return { ...failed(504, timedOut), annotations };
      }
      // OpenFaaS: a function that cannot be reached is reported as 503.
      return { ...failed(503, `could not reach function "${invocation.functionName}": ${describe(err)}`), annotations };
    }
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
