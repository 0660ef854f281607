import type { LookupFunction } from 'node:net';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import { ClientDestroyedError } from './errors.js';
import type { WriteScheduler } from './connection.js';
import { OriginPool, type PoolOwner } from './origin-pool.js';
import { plainOrigin, plainRequestHead } from './request-head.js';

export interface Http1AgentOptions {
  /** Connections kept per origin. */
  readonly connections: number;
  readonly keepAliveTimeoutMs: number;
  /** Resolves host names (the callback SSRF guard's lookup); absent, the system's. */
  readonly lookup?: LookupFunction | undefined;
  /** Refuses a host before connecting (the guard's check of IP literals); absent, any. */
  readonly refusal?: ((host: string) => Error | undefined) | undefined;
  /** Schedules each request's socket write (see HttpClientOptions.deferWrite); absent, at once. */
  readonly deferWrite?: WriteScheduler | undefined;
}

/** undici's default header block limit (node's --max-http-header-size). */
const MAX_HEADER_BYTES = 16 * 1024;
/** undici's default connect timeout. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How often idle connections are checked against their keep-alive. */
const SWEEP_MS = 1_000;

/**
 * The outbound HTTP calls' dispatcher, as asyncfn uses one (./exchange.ts, the gateway's sync
 * route): a request to dispatch, and the end of the pool. undici's own classes fit it too.
 */
export interface HttpDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  /** No new requests; those given are served, then the connections close. */
  close(): Promise<void>;
  /** Fails what is in flight and closes every connection at once. */
  destroy(error?: Error | null): Promise<void>;
}

/**
 * The worker's outbound HTTP client: the plain requests (./request-head.ts: `http:`, a body in
 * memory, valid headers) go over asyncfn's own HTTP/1.1 connections; everything else (https,
 * streamed bodies, undici's own API such as `request()` and its older handler shape) goes to an
 * undici Agent made with `agentOptions` on the first such request (`loadAgent` loads its class).
 * In alternated cold drains a worker spent a tenth less CPU per invocation that way (its function
 * call and callback), most of it in V8's compiler and collector, which have less code and fewer
 * objects to handle (BENCHMARKS.md, "The worker's own HTTP/1.1 client"); and a worker whose calls
 * are all plain never loads undici (./undici-parts.ts). What is left of a call is mostly the
 * kernel's: on loopback the write syscall runs the receiver's TCP work too.
 *
 * The lean path speaks undici's dispatch handler API (onRequestStart … onResponseEnd /
 * onResponseError), so `exchange()` cannot tell the two apart.
 */
export function http1Agent(loadAgent: () => typeof UndiciAgent, agentOptions: UndiciAgent.Options, opts: Http1AgentOptions): HttpDispatcher {
  return new Http1Agent(loadAgent, agentOptions, opts);
}

class Http1Agent implements HttpDispatcher, PoolOwner {
  readonly #pools = new Map<string, OriginPool>();
  readonly #loadAgent: () => typeof UndiciAgent;
  readonly #agentOptions: UndiciAgent.Options;
  readonly #opts: Http1AgentOptions;
  /** undici's Agent, for the requests the lean path does not take; made on the first one. */
  #undici: UndiciAgent | undefined = undefined;
  #sweep: NodeJS.Timeout | undefined = undefined;
  #destroyed = false;
  /** `close()` calls waiting for the last pool to empty (its requests served, its connections closed). */
  #whenEmpty: Array<() => void> = [];

  constructor(loadAgent: () => typeof UndiciAgent, agentOptions: UndiciAgent.Options, opts: Http1AgentOptions) {
    this.#loadAgent = loadAgent;
    this.#agentOptions = agentOptions;
    this.#opts = opts;
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (typeof options.origin !== 'string' || handler.onRequestStart === undefined || options.query !== undefined || options.upgrade != null) {
      return this.#toUndici(options, handler);
    }
    let pool = this.#pools.get(options.origin);
    const origin = pool?.origin ?? plainOrigin(options.origin);
    if (origin === undefined) return this.#toUndici(options, handler);
    const head = plainRequestHead(origin, options);
    if (head === undefined) return this.#toUndici(options, handler);
    if (this.#destroyed) throw new ClientDestroyedError();
    if (pool === undefined) {
      const opts = this.#opts;
      pool = new OriginPool(
        origin,
        {
          connections: opts.connections,
          keepAliveTimeoutMs: opts.keepAliveTimeoutMs,
          lookup: opts.lookup,
          refusal: opts.refusal,
          connectTimeoutMs: CONNECT_TIMEOUT_MS,
          maxHeaderBytes: MAX_HEADER_BYTES,
          deferWrite: opts.deferWrite,
        },
        this,
      );
      this.#pools.set(options.origin, pool);
      this.#sweep ??= setInterval(() => this.#sweepIdle(), SWEEP_MS).unref();
    }
    pool.dispatch({ head, body: (options.body as Uint8Array | null | undefined) ?? null, handler });
    return true;
  }

  empty(pool: OriginPool): void {
    for (const [key, value] of this.#pools) {
      if (value === pool) {
        this.#pools.delete(key);
        break;
      }
    }
    if (this.#pools.size > 0) return;
    if (this.#sweep !== undefined) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
    for (const resolve of this.#whenEmpty.splice(0)) resolve();
  }

  async close(): Promise<void> {
    // No new requests; those given are served (undici's meaning of close), then the connections
    // close, and only then does it resolve, as undici's close does.
    this.#destroyed = true;
    const served = this.#pools.size === 0 ? undefined : new Promise<void>((resolve) => this.#whenEmpty.push(resolve));
    for (const pool of [...this.#pools.values()]) pool.close();
    await Promise.all([served, this.#undici?.close()]);
  }

  async destroy(error?: Error | null): Promise<void> {
    this.#destroyed = true;
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
    const reason = new ClientDestroyedError();
    for (const pool of [...this.#pools.values()]) pool.destroy(reason);
    this.#pools.clear();
    for (const resolve of this.#whenEmpty.splice(0)) resolve();
    await this.#undici?.destroy(error ?? null);
  }

  /** What the lean path does not take goes to undici's Agent, which refuses it itself once closed. */
  #toUndici(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#undici === undefined) {
      // Closed before undici was needed: refused as the lean path refuses it.
      if (this.#destroyed) throw new ClientDestroyedError();
      this.#undici = new (this.#loadAgent())(this.#agentOptions);
    }
    return this.#undici.dispatch(options, handler);
  }

  #sweepIdle(): void {
    const now = Date.now();
    for (const pool of this.#pools.values()) pool.sweep(now);
  }
}
