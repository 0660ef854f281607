import { isIP, type LookupFunction } from 'node:net';
import type { buildConnector as BuildConnector } from 'undici';
import { http1Agent, type HttpDispatcher } from './h1/agent.js';
import type { WriteScheduler } from './h1/connection.js';
import { undiciAgent, undiciBuildConnector } from './undici-parts.js';

export type { HttpDispatcher } from './h1/agent.js';

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
  /**
   * Schedules the socket write of each plain request (./h1/: `http:`, a body in memory): the
   * worker passes the process's write batch (src/queue/write-batch.ts), so the function calls
   * and callbacks started in one I/O phase leave together at its end (a burst, 256 at a time),
   * with that turn's NATS writes. Absent, each is written at once.
   */
  deferWrite?: WriteScheduler;
}

/** Vets connection targets at connect time, so what was checked is what is connected to. */
export interface ConnectGuard {
  /** Resolves host names for net.connect/tls.connect; it may drop addresses or fail. */
  readonly lookup: LookupFunction;
  /** An error refuses a connection to an IP-literal host, which net.connect never looks up. */
  refusal(host: string, address: string): Error | undefined;
}

/**
 * The outbound HTTP pool for function calls and callbacks: asyncfn's own HTTP/1.1 connections for
 * the plain `http:` requests of `exchange()`, undici's Agent (loaded on first use) for the rest
 * (./h1/agent.ts); both follow the same guard. undici's own header and body timeouts are off: a
 * function may legitimately run for hours, and the caller bounds each exchange as a whole
 * (upstream_timeout, callback_timeout; see exchange.ts) or aborts it (the machine leaving its
 * state).
 */
export function createHttpClient(opts: HttpClientOptions): HttpDispatcher {
  const keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? 30_000;
  const guard = opts.connectGuard;
  const refusal = guard && literalRefusal(guard);
  return http1Agent(
    undiciAgent,
    {
      connections: opts.connectionsPerOrigin,
      keepAliveTimeout: keepAliveTimeoutMs,
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(guard && refusal ? { connect: guardedConnector(guard.lookup, refusal) } : {}),
    },
    { connections: opts.connectionsPerOrigin, keepAliveTimeoutMs, lookup: guard?.lookup, refusal, deferWrite: opts.deferWrite },
  );
}

/** The guard's refusal of an IP-literal host (a name is vetted by its lookup); IPv6 without brackets. */
function literalRefusal(guard: ConnectGuard): (host: string) => Error | undefined {
  return (host) => (isIP(host) === 0 ? undefined : guard.refusal(host, host));
}

/** undici's own connector with a guarded lookup, built on the first connection; plus the check of IP-literal hosts. */
function guardedConnector(lookup: LookupFunction, refusal: (host: string) => Error | undefined): BuildConnector.connector {
  let connect: BuildConnector.connector | undefined;
  return (options, callback) => {
    // undici passes IPv6 literals without their brackets.
    const refused = refusal(options.hostname);
    if (refused) {
      callback(refused, null);
      return;
    }
    connect ??= undiciBuildConnector()({ lookup });
    connect(options, callback);
  };
}

/** A signal that aborts on its parent or at a deadline, and the way to stop its timer. */
export interface TimeLimit {
  readonly signal: AbortSignal;
  /** Stops the timer and lets go of the parent; call it when the exchange has ended. */
  clear(): void;
}

/** setTimeout's longest delay; a longer one would fire at once. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/**
 * A signal that aborts when `parent` does (with its reason) or after `timeoutMs` (with a
 * `TimeoutError`, as AbortSignal.timeout's), so {@link isTimeout} tells which happened.
 * Its own controller and timer, held strongly until {@link TimeLimit.clear}: node 20's
 * `AbortSignal.any([parent, AbortSignal.timeout(ms)])` holds the timeout signal weakly, and a
 * garbage collection before the deadline loses it, so the call is never cut
 * (nodejs/node#57736; test/unit/http/time-limit.test.ts).
 */
export function timeLimit(parent: AbortSignal | undefined, timeoutMs: number): TimeLimit {
  const controller = new AbortController();
  const onParent = () => finish(parent!.reason);
  const timer = setTimeout(() => finish(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), Math.min(timeoutMs, LONGEST_TIMER_MS));
  function finish(reason: unknown): void {
    clear();
    controller.abort(reason);
  }
  function clear(): void {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParent);
  }
  if (parent?.aborted) finish(parent.reason);
  else parent?.addEventListener('abort', onParent, { once: true });
  return { signal: controller.signal, clear };
}

/** True when a signal was aborted by its deadline ({@link timeLimit}, or AbortSignal.timeout). */
export function isTimeout(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError';
}
