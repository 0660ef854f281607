import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { AbortLike } from '../../actors/abort-handle.js';

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

/** The exchange did not end within its `timeoutMs`. */
export class ExchangeTimeoutError extends Error {
  override readonly name = 'ExchangeTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
  }
}

const EMPTY = new Uint8Array(0);
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

/**
 * One request and its whole response through `dispatcher`, at the cost of undici's dispatch:
 * no response stream, no AbortController, one timer. undici's `request()` costs about twice the
 * CPU for the same exchange (a Readable per response, an AbortSignal per call; `npm run bench`,
 * pieces). Rejects with the dispatcher's error, an {@link ExchangeTimeoutError}, or the reason of
 * `signal`.
 */
export function exchange(dispatcher: Dispatcher, request: ExchangeRequest, opts: ExchangeOptions): Promise<ExchangeResponse> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const { origin, path } = originAndPath(request.url);
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    /**
     * Why the exchange was cut while undici had not started it yet (queued for a connection): it
     * rejects at once and is aborted as soon as undici starts it.
     */
    let cutBeforeStart: unknown;
    let settled = false;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let length = 0;

    const cut = (reason: unknown): void => {
      if (settled) return;
      if (controller) {
        controller.abort(reason as Error);
        return;
      }
      cutBeforeStart = reason;
      finish();
      reject(reason);
    };
    const timer = setTimeout(() => cut(new ExchangeTimeoutError(opts.timeoutMs)), opts.timeoutMs);
    const onAbort = (): void => cut(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };

    dispatcher.dispatch(
      // undici streams an async iterable body with backpressure; its types name only Readable.
      { origin, path, method: request.method, headers: request.headers, body: request.body as Uint8Array | null },
      {
        onRequestStart(started) {
          controller = started;
          if (cutBeforeStart !== undefined) started.abort(cutBeforeStart as Error);
        },
        onResponseStart(_controller, statusCode, responseHeaders) {
          status = statusCode;
          headers = responseHeaders;
        },
        onResponseData(_controller, chunk) {
          if (opts.discardBody) return;
          chunks.push(chunk);
          length += chunk.length;
        },
        onResponseEnd() {
          if (settled) return;
          finish();
          const body = length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
          resolve({ status, headers, body });
        },
        onResponseError(_controller, error) {
          if (settled) return;
          finish();
          reject(error);
        },
      },
    );
  });
}
