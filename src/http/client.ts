import { isIP, type LookupFunction } from 'node:net';
import type { buildConnector as BuildConnector, Dispatcher } from 'undici';
import { Agent, buildConnector } from './undici-parts.js';

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
 * are off: a function may legitimately run for hours, and the caller bounds each exchange as a
 * whole (upstream_timeout, callback_timeout; see exchange.ts) or aborts it (the machine leaving
 * its state).
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
function guardedConnector(guard: ConnectGuard): BuildConnector.connector {
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

/** A signal that aborts on `parent` or after `timeoutMs`, and tells which happened. */
export function withTimeout(parent: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return parent ? AbortSignal.any([parent, timeout]) : timeout;
}

/** True when an error came from an AbortSignal.timeout firing. */
export function isTimeout(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError';
}
