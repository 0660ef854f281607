import { isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';

export interface HttpClientOptions {
  /** Connections kept per origin; match max_inflight so every slot can call at once. */
  connectionsPerOrigin: number;
  /** Idle keep-alive sockets are closed after this many ms; default 30 s. */
  keepAliveTimeoutMs?: number;
  /**
   * Checks every address a new connection would use (the callback SSRF guard); absent, any
   * address is fine (function calls). Redirects are never followed either way: no redirect
   * interceptor is composed, so a 3xx is an answer like any other.
   */
  connectGuard?: ConnectGuard;
}

/** Vets connection targets at connect time, so what was checked is what is connected to. */
export interface ConnectGuard {
  /** Resolves host names for net.connect/tls.connect; it may drop addresses or fail. */
  readonly lookup: LookupFunction;
  /** An error refuses a connection to an IP-literal host, which net.connect never looks up. */
  refusal(host: string, address: string): Error | undefined;
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
    ...(opts.connectGuard ? { connect: guardedConnector(opts.connectGuard) } : {}),
  });
}

/** undici's own connector with a guarded lookup, plus a check of IP-literal hosts. */
function guardedConnector(guard: ConnectGuard): buildConnector.connector {
  const connect = buildConnector({ lookup: guard.lookup });
  return (options, callback) => {
    // undici passes IPv6 literals without their brackets.
    const refused = isIP(options.hostname) === 0 ? undefined : guard.refusal(options.hostname, options.hostname);
    if (refused) {
      callback(refused, null);
      return;
    }
    connect(options, callback);
  };
}

/** An abort signal with a time limit that is released as soon as the work it bounds is done. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True when the time limit (not the parent) aborted the signal. */
  timedOut(): boolean;
  /** Cancels the timer and the parent listener; call it once the request is over. */
  clear(): void;
}

/**
 * A signal that aborts on `parent` or after `timeoutMs`. Unlike AbortSignal.timeout, whose timer
 * stays armed until it fires (one pending timer per call for upstream_timeout, 60 s by default),
 * the timer is cleared with the request, and it costs one controller instead of AbortSignal.any's three.
 */
export function deadline(parent: AbortSignal | undefined, timeoutMs: number): Deadline {
  const controller = new AbortController();
  let expired = false;
  const onParentAbort = (): void => controller.abort(parent?.reason);
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => expired,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
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
