import type { IncomingHttpHeaders } from 'node:http';
import { BoundedMemo, shortKey } from '../../bounded-memo.js';
import { TOKEN_CHAR, trimOws } from '../fields.js';

/**
 * Reads the head of one kind of HTTP/1.1 request from raw bytes, for the gateway's front door
 * (src/gateway/front-door.ts): `POST <target> HTTP/1.1` with a body framed by one Content-Length,
 * and header lines that leave nothing to interpret. It is a strict subset of RFC 9112 and of what
 * node's parser (llhttp) accepts, chosen so that both read the same request from the same bytes:
 * the same method, target, fields, and the same end of the body. Anything outside the subset is
 * not an error here but `NOT_SIMPLE`: the caller hands the connection to node:http, which answers
 * it as it always has (a 400, a 431, chunked bodies, Expect, upgrades, pipelined oddities).
 *
 * Outside the subset, so left to node:
 * - a method other than POST, an HTTP version other than 1.1, a target outside `prefix` or with a
 *   byte outside RFC 3986's characters (no `#`, no space, no control or non-ASCII byte);
 * - a header line that is not `token ":" OWS value OWS`, a value with a byte other than HTAB or
 *   visible ASCII (obs-text and obs-fold included), a line ending other than CRLF;
 * - a field named twice (node joins or drops repeats by name), `Set-Cookie` (node makes it an
 *   array), `__proto__` (node's headers object cannot hold it);
 * - no Host, no Content-Length or one that is not 1–10 digits (with spaces around them, and tabs
 *   only before: llhttp refuses a tab after them), any Transfer-Encoding, Expect or
 *   Upgrade, a Connection other than `keep-alive`, any Proxy-Connection (llhttp reads it as
 *   Connection);
 * - a head longer than `maxHeadBytes` (node answers its 431).
 *
 * A head not all in yet is `NOT_SIMPLE` as soon as what has come cannot start one of the subset
 * (another method or target, a bare LF, a control or non-ASCII byte): node refuses or serves it
 * at once, where waiting for the rest would hold the connection until `read_timeout`.
 */

/** One request's head, as node's IncomingMessage would show it. */
export interface SimpleRequestHead {
  readonly method: 'POST';
  readonly url: string;
  readonly httpVersion: '1.1';
  /** Lowercased names, one value each (none repeats). */
  readonly headers: IncomingHttpHeaders;
  /** Names as sent and values, alternating, as node's `rawHeaders`. */
  readonly rawHeaders: string[];
  readonly contentLength: number;
  /** Bytes of the request line and header block, the blank line included: where the body starts. */
  readonly headBytes: number;
}

/** The head has not all arrived yet: read more, then ask again. */
export const MORE = 'more';
/** Not the subset this reader takes: hand the connection to node:http with every byte read. */
export const NOT_SIMPLE = 'not-simple';

export type HeadReading = SimpleRequestHead | typeof MORE | typeof NOT_SIMPLE;

/**
 * The header lines, all checked in one pass: each a token, a colon and a value of HTAB and visible
 * ASCII (its OWS included), lines split by CRLF. A check per line cost more than the rest of the
 * head's reading (BENCHMARKS.md, "The request head in one pass").
 */
const FIELD_LINES = new RegExp(`^(?:${TOKEN_CHAR}+:[\\t\\x20-\\x7e]*(?:\\r\\n|$))+$`);
/** A request target's characters: RFC 3986's unreserved, sub-delims, `:@/?%`. */
const TARGET = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]+$/;
/** Content-Length's whole value, white space included: llhttp takes spaces after the digits, not a tab. */
const LENGTH_VALUE = /^[ \t]*\d{1,10} *$/;
const CRLF_CRLF = Buffer.from('\r\n\r\n');
/** The header names clients send, and their lower-case keys: each client sends the same handful. */
const NAMES = new BoundedMemo((name: string) => name.toLowerCase(), { max: 256, keep: shortKey(128) });
const REQUEST_LINE_START = 'POST ';
const REQUEST_LINE_END = ' HTTP/1.1';

/**
 * The head at the start of `buf`. `searchFrom` is where the blank line may start at the earliest
 * (the length of what an earlier call saw, less 3): a head that arrives in pieces is scanned once.
 */
export function readSimpleRequestHead(buf: Buffer, prefix: string, maxHeadBytes: number, searchFrom = 0): HeadReading {
  const end = buf.indexOf(CRLF_CRLF, Math.max(0, searchFrom));
  if (end < 0) return buf.length > maxHeadBytes || !mayStartHead(buf, prefix, searchFrom) ? NOT_SIMPLE : MORE;
  const headBytes = end + 4;
  if (headBytes > maxHeadBytes) return NOT_SIMPLE;
  const head = buf.toString('latin1', 0, end);

  let lineEnd = head.indexOf('\r\n');
  if (lineEnd < 0) return NOT_SIMPLE; // a request line and no fields: no Host, no Content-Length
  const line = head.slice(0, lineEnd);
  if (!line.startsWith(REQUEST_LINE_START) || !line.endsWith(REQUEST_LINE_END)) return NOT_SIMPLE;
  const url = line.slice(REQUEST_LINE_START.length, line.length - REQUEST_LINE_END.length);
  if (!url.startsWith(prefix) || !TARGET.test(url)) return NOT_SIMPLE;

  const lines = head.slice(lineEnd + 2);
  if (!FIELD_LINES.test(lines)) return NOT_SIMPLE;
  const headers: IncomingHttpHeaders = {};
  const rawHeaders: string[] = [];
  let start = 0;
  while (start < lines.length) {
    lineEnd = lines.indexOf('\r\n', start);
    if (lineEnd < 0) lineEnd = lines.length;
    const colon = lines.indexOf(':', start); // within the line, after a name: FIELD_LINES holds
    const rawName = lines.slice(start, colon);
    const value = trimOws(lines, colon + 1, lineEnd);
    const name = NAMES.get(rawName);
    if (name === 'content-length' && !LENGTH_VALUE.test(lines.slice(colon + 1, lineEnd))) return NOT_SIMPLE;
    if (headers[name] !== undefined || name === 'set-cookie' || name === '__proto__') return NOT_SIMPLE;
    headers[name] = value;
    rawHeaders.push(rawName, value);
    start = lineEnd + 2;
  }

  const length = headers['content-length'];
  if (length === undefined || headers.host === undefined) return NOT_SIMPLE;
  if (headers['transfer-encoding'] !== undefined || headers.expect !== undefined || headers.upgrade !== undefined) return NOT_SIMPLE;
  if (headers['proxy-connection'] !== undefined) return NOT_SIMPLE;
  const connection = headers.connection;
  if (connection !== undefined && connection.toLowerCase() !== 'keep-alive') return NOT_SIMPLE;
  return { method: 'POST', url, httpVersion: '1.1', headers, rawHeaders, contentLength: Number(length), headBytes };
}

/**
 * Whether `partial` (a head not all in: no blank line yet) may still become one of the subset: it
 * starts as `POST <prefix>` does, and its bytes from `from` on (an earlier call read those before)
 * are HTAB, CR, visible ASCII, or an LF after its CR. Read only while a head arrives in pieces.
 */
function mayStartHead(partial: Buffer, prefix: string, from: number): boolean {
  const start = REQUEST_LINE_START + prefix;
  const known = Math.min(partial.length, start.length);
  for (let i = 0; i < known; i++) if (partial[i] !== start.charCodeAt(i)) return false;
  for (let i = Math.max(0, from); i < partial.length; i++) {
    const byte = partial[i]!;
    if (byte === 0x0a) {
      if (i === 0 || partial[i - 1] !== 0x0d) return false;
    } else if (byte !== 0x09 && byte !== 0x0d && (byte < 0x20 || byte > 0x7e)) return false;
  }
  return true;
}
