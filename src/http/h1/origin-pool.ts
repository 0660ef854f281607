import { Http1Connection, type ConnectionOptions, type ConnectionOwner, type Http1Request } from './connection.js';
import type { PlainOrigin } from './request-head.js';

export interface OriginPoolOptions extends ConnectionOptions {
  /** Connections open at once, at most; further requests wait for one. */
  readonly connections: number;
  /** An idle connection is closed after this long, ms (or sooner, when the server's Keep-Alive hint says so). */
  readonly keepAliveTimeoutMs: number;
  /** Refuses to connect to a host (the callback SSRF guard's check of IP literals; a name is vetted by `lookup`). */
  readonly refusal?: ((host: string) => Error | undefined) | undefined;
}

/** What the pool tells its client. */
export interface PoolOwner {
  /** The pool holds no connection and no waiting request: it may be forgotten. */
  empty(pool: OriginPool): void;
}

/**
 * The keep-alive connections to one origin: idle ones are reused last-in first-out (the warmest
 * first, so the pool shrinks back when the load falls), at most `connections` are open, and a
 * request waits in order for one beyond that. Idle connections past their keep-alive are closed
 * by the client's sweep (./agent.ts), not by a timer each.
 */
export class OriginPool implements ConnectionOwner {
  readonly origin: PlainOrigin;
  readonly #opts: OriginPoolOptions;
  readonly #owner: PoolOwner;
  readonly #idle: Http1Connection[] = [];
  /** Every open connection, idle or busy. */
  readonly #all = new Set<Http1Connection>();
  /** Requests waiting for a connection, oldest first from `#head`. */
  #waiting: Http1Request[] = [];
  #head = 0;
  #destroyed: Error | undefined = undefined;
  /** Closing: requests already given are served, then every connection is closed. */
  #closing = false;

  constructor(origin: PlainOrigin, opts: OriginPoolOptions, owner: PoolOwner) {
    this.origin = origin;
    this.#opts = opts;
    this.#owner = owner;
  }

  dispatch(request: Http1Request): void {
    if (this.#destroyed) throw this.#destroyed;
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      // Aborted as it started: the connection stays free.
      if (!idle.start(request)) this.#idle.push(idle);
      return;
    }
    if (this.#all.size < this.#opts.connections) {
      this.#connect(request);
      return;
    }
    this.#waiting.push(request);
  }

  #connect(request: Http1Request): void {
    const refused = this.#opts.refusal?.(this.origin.host);
    if (refused !== undefined) {
      request.handler.onResponseError?.(REFUSED_CONTROLLER, refused);
      this.#checkEmpty();
      return;
    }
    const connection = new Http1Connection(this, this.origin, this.#opts);
    this.#all.add(connection);
    connection.start(request);
  }

  reusable(connection: Http1Connection, keepAliveHintMs: number | undefined): void {
    for (let next = this.#takeWaiting(); next !== undefined; next = this.#takeWaiting()) {
      if (connection.start(next)) return;
    }
    // The server's hint, less a second for the request that might cross its close (as undici does).
    const keepAliveMs = keepAliveHintMs === undefined ? this.#opts.keepAliveTimeoutMs : Math.min(this.#opts.keepAliveTimeoutMs, keepAliveHintMs - 1000);
    if (keepAliveMs <= 0 || this.#closing) {
      connection.destroy();
      return;
    }
    connection.idleSince = Date.now();
    connection.keepAliveMs = keepAliveMs;
    this.#idle.push(connection);
  }

  gone(connection: Http1Connection): void {
    this.#all.delete(connection);
    const at = this.#idle.indexOf(connection);
    if (at >= 0) this.#idle.splice(at, 1);
    // A request waiting for a connection gets a new one.
    const next = this.#destroyed ? undefined : this.#takeWaiting();
    if (next !== undefined) this.#connect(next);
    else this.#checkEmpty();
  }

  /** The oldest waiting request, taken off the queue; undefined when none waits. */
  #takeWaiting(): Http1Request | undefined {
    if (this.#head === this.#waiting.length) return undefined;
    const next = this.#waiting[this.#head]!;
    this.#waiting[this.#head++] = undefined as never;
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    }
    return next;
  }

  /** Closes idle connections whose keep-alive ran out by `now`. */
  sweep(now: number): void {
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const connection = this.#idle[i]!;
      if (now - connection.idleSince < connection.keepAliveMs) continue;
      // Out of the idle list at once: its close is reported a tick later.
      this.#idle.splice(i, 1);
      connection.destroy();
    }
  }

  /** Serves the requests it was given, then closes: idle connections now, busy ones as they finish. */
  close(): void {
    this.#closing = true;
    for (const connection of this.#idle.splice(0)) connection.destroy();
  }

  /** Closes every connection; requests on them and waiting fail with `reason`. */
  destroy(reason: Error): void {
    this.#destroyed = reason;
    const waiting = this.#waiting.slice(this.#head);
    this.#waiting = [];
    this.#head = 0;
    for (const request of waiting) request.handler.onResponseError?.(REFUSED_CONTROLLER, reason);
    this.#idle.length = 0;
    for (const connection of [...this.#all]) connection.destroy(reason);
  }

  #checkEmpty(): void {
    if (this.#all.size === 0 && this.#head === this.#waiting.length) this.#owner.empty(this);
  }
}

/** The controller given to a request that never reached a connection: there is nothing to abort. */
const REFUSED_CONTROLLER = {
  aborted: false,
  paused: false,
  reason: null,
  abort: () => undefined,
  pause: () => undefined,
  resume: () => undefined,
};
