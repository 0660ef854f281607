import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { AbortLike } from '../../actors/abort-handle.js';
import type { HttpDispatcher } from './h1/agent.js';

/** One HTTP request of the worker: a function call or a callback. */
export interface ExchangeRequest {
  /** Absolute http(s) URL. */
  readonly url: string;
  readonly method: string;
  readonly headers: Record<string, string | string[]>;
  /**
   * The body: bytes, or a stream of them read as the socket takes them (a large payload; give its
   * `content-length` in `headers`, undici checks the count). A stream that throws aborts the request.
   */
  readonly body: Uint8Array | AsyncIterable<Uint8Array> | null;
}

export interface ExchangeResponse {
  readonly status: number;
  /** Lower-case names; a repeated header is an array, as undici's request() gives them. */
  readonly headers: IncomingHttpHeaders;
  /** The whole body; empty when `discardBody` was asked for. */
  readonly body: Uint8Array;
}

export interface ExchangeOptions {
  /** The whole exchange, connection wait included, may take this long, ms; > 0. */
  readonly timeoutMs: number;
  /** Aborts the exchange; it then rejects with the signal's reason. An AbortSignal, or the worker's lighter AbortHandle. */
  readonly signal?: AbortLike | undefined;
  /** Read the response body to its end without keeping it (a callback's answer). */
  readonly discardBody?: boolean;
}

/**
 * Turns an exchange's end into what its caller keeps: the exchange's promise settles with what
 * these return (or rejects with what they throw). A caller that gives one keeps no frame of its
 * own suspended while the request is in flight, only this object: under load a call outlives a
 * young-generation collection or two, and everything it keeps alive is copied each time
 * (BENCHMARKS.md, "What an in-flight invocation holds").
 */
export interface ExchangeReader<T> {
  answered(response: ExchangeResponse): T;
  /** The dispatcher's error, an {@link ExchangeTimeoutError}, or the abort signal's reason. */
  failed(error: unknown): T;
}

/** The exchange did not end within its `timeoutMs`. */
export class ExchangeTimeoutError extends Error {
  override readonly name = 'ExchangeTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
  }
}

const EMPTY = new Uint8Array(0);
const EMPTY_HEADERS: IncomingHttpHeaders = Object.freeze({});
/** scheme://authority, then the path and query; no userinfo, no fragment. */
const PLAIN_URL = /^(https?:\/\/[^/?#@]+)([/?][^#]*)?$/;

/** Splits an absolute URL into undici's origin and path, without a URL object when it is plain. */
export function originAndPath(url: string): { origin: string; path: string } {
  const plain = PLAIN_URL.exec(url);
  if (plain) {
    const path = plain[2] ?? '/';
    return { origin: plain[1]!, path: path.startsWith('?') ? `/${path}` : path };
  }
  const parsed = new URL(url);
  return { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
}

/** What the shared timer callbacks see of an exchange. */
interface Cuttable {
  readonly timeoutMs: number;
  readonly started: boolean;
  cut(reason: unknown): void;
}

/**
 * Timer callback shared by every exchange: no closure per call. Timers run before the event loop
 * reads its sockets, so after a long turn (a burst of thousands of answers read in one go) an
 * answer that came in time may be waiting unread: a request already sent is judged after the next
 * read (`setImmediate` runs after the loop's poll phase), and cut only if still unanswered then.
 * Cut too early, a callback that was answered is sent again, and a function call that was
 * answered is retried. A request not sent yet (waiting for a connection) is cut at once, so that
 * it is never sent: given that read too, it could be sent in it and then cut unanswered.
 */
function timeOut(exchange: Cuttable): void {
  if (exchange.started) setImmediate(cutUnanswered, exchange);
  else cutUnanswered(exchange);
}

function cutUnanswered(exchange: Cuttable): void {
  exchange.cut(new ExchangeTimeoutError(exchange.timeoutMs));
}

/**
 * One exchange in flight: its own undici handler and abort listener, as one object. Under load
 * a function call outlives a young-generation collection or two, so what it keeps is promoted
 * and collected again with the old generation; a class keeps that to one object and its timer,
 * where closures over the exchange's variables made a dozen (BENCHMARKS.md, "What a drain promotes").
 */
class Exchange<T> implements Dispatcher.DispatchHandler, Cuttable {
  readonly timeoutMs: number;
  readonly #resolve: (value: T) => void;
  readonly #reject: (reason: unknown) => void;
  readonly #reader: ExchangeReader<T>;
  readonly #signal: AbortLike | undefined;
  readonly #discardBody: boolean;
  readonly #timer: NodeJS.Timeout;
  #controller: Dispatcher.DispatchController | undefined = undefined;
  /**
   * Why the exchange was cut while undici had not started it yet (queued for a connection): it
   * rejects at once and is aborted as soon as undici starts it.
   */
  #cutBeforeStart: unknown = undefined;
  #settled = false;
  #status = 0;
  #headers: IncomingHttpHeaders = EMPTY_HEADERS;
  #body: Buffer | Buffer[] | undefined = undefined;
  #length = 0;

  constructor(opts: ExchangeOptions, reader: ExchangeReader<T>, resolve: (value: T) => void, reject: (reason: unknown) => void) {
    this.timeoutMs = opts.timeoutMs;
    this.#reader = reader;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = opts.signal;
    this.#discardBody = opts.discardBody === true;
    this.#timer = setTimeout(timeOut, opts.timeoutMs, this);
    // The exchange listens itself (`handleEvent`): no closure per call.
    opts.signal?.addEventListener('abort', this, { once: true });
  }

  /** The signal aborted. */
  handleEvent(): void {
    this.cut(this.#signal!.reason);
  }

  /** Whether undici has started it: its request is on a connection (being) written. */
  get started(): boolean {
    return this.#controller !== undefined;
  }

  cut(reason: unknown): void {
    if (this.#settled) return;
    if (this.#controller) {
      this.#controller.abort(reason as Error);
      return;
    }
    this.#cutBeforeStart = reason;
    this.#finish();
    this.#fail(reason);
  }

  #fail(error: unknown): void {
    this.#read(undefined, error);
  }

  /** Settles the promise with what the reader makes of the answer (or of `error` without one); what it throws rejects. */
  #read(response: ExchangeResponse | undefined, error: unknown): void {
    let value: T;
    try {
      value = response !== undefined ? this.#reader.answered(response) : this.#reader.failed(error);
    } catch (thrown) {
      this.#reject(thrown);
      return;
    }
    this.#resolve(value);
  }

  #finish(): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#cutBeforeStart !== undefined) controller.abort(this.#cutBeforeStart as Error);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.#status = statusCode;
    this.#headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#discardBody) return;
    this.#length += chunk.length;
    const body = this.#body;
    // One chunk is kept as it is (the common answer); an array only from the second.
    if (body === undefined) this.#body = chunk;
    else if (Array.isArray(body)) body.push(chunk);
    else this.#body = [body, chunk];
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    this.#finish();
    const body = this.#body;
    this.#read(
      {
        status: this.#status,
        headers: this.#headers,
        body: body === undefined ? EMPTY : Array.isArray(body) ? Buffer.concat(body, this.#length) : body,
      },
      undefined,
    );
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#settled) return;
    this.#finish();
    this.#fail(error);
  }
}

/** The response itself; a failure rejects. */
const AS_IS: ExchangeReader<ExchangeResponse> = {
  answered: (response) => response,
  failed: (error) => {
    throw error;
  },
};

/**
 * One request and its whole response through `dispatcher`, at the cost of undici's dispatch:
 * no response stream, no AbortController, one timer. undici's `request()` costs about twice the
 * CPU for the same exchange (a Readable per response, an AbortSignal per call; `npm run bench`,
 * pieces). Resolves with the response; rejects with the dispatcher's error, an
 * {@link ExchangeTimeoutError}, or the reason of `signal`. With a `reader`, settles with what it
 * makes of either (an already aborted `signal` is read by it too).
 */
export function exchange(dispatcher: HttpDispatcher, request: ExchangeRequest, opts: ExchangeOptions): Promise<ExchangeResponse>;
export function exchange<T>(dispatcher: HttpDispatcher, request: ExchangeRequest, opts: ExchangeOptions, reader: ExchangeReader<T>): Promise<T>;
export function exchange<T>(
  dispatcher: HttpDispatcher,
  request: ExchangeRequest,
  opts: ExchangeOptions,
  reader: ExchangeReader<T> = AS_IS as unknown as ExchangeReader<T>,
): Promise<T> {
  const { signal } = opts;
  if (signal?.aborted) {
    try {
      return Promise.resolve(reader.failed(signal.reason));
    } catch (thrown) {
      return Promise.reject(thrown);
    }
  }
  const { origin, path } = originAndPath(request.url);
  const promise = new Promise<T>(takeSettlers as (resolve: (value: T) => void, reject: (reason: unknown) => void) => void);
  const handler = new Exchange<T>(opts, reader, taken.resolve, taken.reject);
  // The handler holds them now; the module keeps no exchange's promise alive after it.
  taken.resolve = taken.reject = NOTHING;
  try {
    dispatcher.dispatch(
      // undici streams an async iterable body with backpressure; its types name only Readable.
      { origin, path, method: request.method, headers: request.headers, body: request.body as Uint8Array | null },
      handler,
    );
  } catch (error) {
    // A dispatcher that throws (closed, invalid options) rejects the exchange, as undici's request() does.
    handler.cut(error);
  }
  return promise;
}

/**
 * The settling functions of the promise just made: `new Promise(takeSettlers)` runs it at once, and
 * the caller reads them before anything else runs. A module function rather than an executor
 * closure per call: V8 drops the optimized code of closures made per call at every full collection.
 */
const NOTHING = (): void => undefined;
const taken: { resolve: (value: unknown) => void; reject: (reason: unknown) => void } = { resolve: NOTHING, reject: NOTHING };
function takeSettlers(resolve: (value: unknown) => void, reject: (reason: unknown) => void): void {
  taken.resolve = resolve;
  taken.reject = reject;
}
