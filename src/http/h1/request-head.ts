import { BoundedMemo, shortKey } from '../../bounded-memo.js';
import { isFieldValue, isToken } from '../fields.js';

/**
 * The request line and header block the worker's own HTTP/1.1 client writes, and which requests
 * it takes at all. It takes the plain ones, which are nearly all of a worker's: `http:`, a body in
 * memory (or none), a method other than HEAD and CONNECT, and headers that are valid and say
 * nothing about the connection or the framing. Anything else (https, a streamed body, an invalid
 * or connection-level header) goes to undici, which keeps its own behaviour and errors for it.
 */

/** An origin this client connects to: `http://host[:port]`. */
export interface PlainOrigin {
  /** For net.connect: a name or an IP literal, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
  /** The Host header: the origin's authority as written. */
  readonly authority: string;
}

const ORIGIN = /^http:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_~]+)(?::(\d{1,5}))?\/?$/;

/** The origin when it is plain `http:` with a host this client can connect to; otherwise undefined. */
export function plainOrigin(origin: string): PlainOrigin | undefined {
  const match = ORIGIN.exec(origin);
  if (!match) return undefined;
  const port = match[2] === undefined ? 80 : Number(match[2]);
  if (port === 0 || port > 65535) return undefined;
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  return { host, port, authority: match[2] === undefined ? match[1]! : `${match[1]!}:${match[2]}` };
}

/** A request as the exchange gives it (undici's dispatch options). */
export interface PlainRequest {
  readonly method: string;
  readonly path: string;
  readonly headers?: unknown;
  readonly body?: unknown;
}

/** A request target: visible ASCII, starting with "/". */
const PATH = /^\/[\x21-\x7e]*$/;
/** Headers about the connection or the framing: this client sets them, undici decides on the rest. */
const LEFT_TO_UNDICI = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection']);
/**
 * Header names found to be tokens, with their lower-case forms: a worker sends the same dozen names
 * on every call (its own and its callers'), and a `RegExp#test` and a `toLowerCase` per header were
 * a third of a head's cost (`npm run bench:instructions -- --only http.head`). Bounded: names past
 * it are checked each time.
 */
const CHECKED_NAMES = new BoundedMemo((name: string) => (isToken(name) ? name.toLowerCase() : null), { max: 1_024, keep: shortKey(128) });
/** Methods whose request carries a body, so an empty one is announced with `content-length: 0` (as undici does). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The request's head (request line, Host, headers, Content-Length, blank line) as latin1 text, or
 * undefined when the request is not one this client takes.
 */
export function plainRequestHead(origin: PlainOrigin, request: PlainRequest): string | undefined {
  const { method, path, body } = request;
  if (!isToken(method) || method === 'HEAD' || method === 'CONNECT') return undefined;
  if (!PATH.test(path)) return undefined;
  if (body != null && !(body instanceof Uint8Array)) return undefined;
  const length = body == null ? 0 : body.byteLength;
  let host = origin.authority;
  let fields = '';
  const headers = request.headers;
  if (headers != null) {
    if (typeof headers !== 'object' || Array.isArray(headers)) return undefined;
    for (const name in headers) {
      const value = (headers as Record<string, unknown>)[name];
      if (value === undefined) continue;
      const key = CHECKED_NAMES.get(name);
      if (key === null) return undefined;
      if (LEFT_TO_UNDICI.has(key)) return undefined;
      if (key === 'content-length') {
        // A stated length must be the body's; undici reports a mismatch as its own error.
        if (typeof value !== 'string' || value !== String(length)) return undefined;
        continue;
      }
      if (typeof value === 'string') {
        if (!isFieldValue(value)) return undefined;
        if (key === 'host') host = value;
        else fields += `${name}: ${value}\r\n`;
      } else if (Array.isArray(value) && key !== 'host') {
        for (const item of value) {
          if (typeof item !== 'string' || !isFieldValue(item)) return undefined;
          fields += `${name}: ${item}\r\n`;
        }
      } else {
        return undefined;
      }
    }
  }
  const framing = length > 0 || BODY_METHODS.has(method) ? `content-length: ${length}\r\n` : '';
  return `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: keep-alive\r\n${fields}${framing}\r\n`;
}
