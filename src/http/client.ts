import { Agent, type Dispatcher } from 'undici';

export interface HttpClientOptions {
  /** Connections kept per origin; match max_inflight so every slot can call at once. */
  connectionsPerOrigin: number;
  /** Idle keep-alive sockets are closed after this many ms; default 30 s. */
  keepAliveTimeoutMs?: number;
}

/**
 * The outbound HTTP pool for function calls and callbacks. undici's own header and body timeouts
 * are off: a function may legitimately run for hours, and the caller bounds each request with an
 * AbortSignal (upstream_timeout, or the machine leaving its state).
 */
export function createHttpClient(opts: HttpClientOptions): Dispatcher {
  return new Agent({
    connections: opts.connectionsPerOrigin,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

/** A signal that aborts on `parent` or after `timeoutMs`, and tells which happened. */
export function withTimeout(parent: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return parent ? AbortSignal.any([parent, timeout]) : timeout;
}

/** True when an error came from an AbortSignal.timeout firing. */
export function isTimeout(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError';
}
