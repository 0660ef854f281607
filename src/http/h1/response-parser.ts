import type { IncomingHttpHeaders } from 'node:http';
import { BoundedMemo, shortKey } from '../../bounded-memo.js';
import { FIELD_VALUE_CHAR, isFieldValue, isToken, TOKEN_CHAR, trimOws } from '../fields.js';
import { ResponseParseError } from './errors.js';

/** What the parser reports, in order: one head, its body's chunks, then the end. */
export interface ResponseSink {
  head(status: number, statusText: string, headers: IncomingHttpHeaders): void;
  data(chunk: Buffer): void;
}

/** How a response ended, for the connection that read it. */
export interface ResponseEnd {
  /** The connection may carry another request (HTTP/1.1, no `Connection: close`, framed body). */
  readonly reusable: boolean;
  /** The server's `Keep-Alive: timeout=N` hint, ms; undefined without one. */
  readonly keepAliveHintMs: number | undefined;
}

const enum State {
  Head,
  Sized,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const DIGITS = /^\d{1,15}$/;
/** chunk-size, then chunk-ext (ignored). 13 hex digits stay within a safe integer. */
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,13})[ \t]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i;
/** A Connection value naming `close` among its options. */
const CLOSE = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;
/**
 * The header lines after the status line, all checked in one pass: each a token, a colon and a
 * field value (isToken and isFieldValue of ../fields.ts, line by line), separated by CRLF. Checking
 * and splitting line by line cost twice as much (BENCHMARKS.md, "The response head in one pass").
 */
const FIELD_LINES = new RegExp(`^(?:${TOKEN_CHAR}+:${FIELD_VALUE_CHAR}*(?:\\r\\n|$))*$`);
/** Longest chunk-size line (with its extensions) accepted before its CRLF. */
const MAX_CHUNK_LINE = 4096;

const EMPTY = Buffer.alloc(0);
/** The header names servers answer with, and their lower-case keys: each server sends the same handful. */
const NAMES = new BoundedMemo((name: string) => name.toLowerCase(), { max: 256, keep: shortKey(128) });

/**
 * A strict HTTP/1.1 response parser (RFC 9112) for the worker's own client (./connection.ts): the
 * status line and header block, then a body framed by Content-Length, by chunked transfer coding,
 * or by the end of the connection. It is strict where a lenient parser would guess: a malformed
 * Content-Length, two that disagree, an invalid chunk size, a folded or invalid header line, or a
 * header block larger than `maxHeaderBytes` is an error, never a truncated body. (http-parser-js,
 * the pure-JS parser on npm, is lenient by design: it reads an invalid chunk size as the last
 * chunk, so a body can end early without an error.)
 *
 * Informational answers (1xx other than 101) are skipped; a 101 is an error, as this client never
 * asks for an upgrade. Requests the connection sends are never HEAD or CONNECT, so a 1xx, 204 or
 * 304 is the only answer without a body.
 *
 * One response at a time; `reset()` before the next on the same connection.
 */
export class ResponseParser {
  readonly #maxHeaderBytes: number;
  #sink: ResponseSink;
  #state = State.Head;
  /** Bytes of an unfinished line or header block, kept across reads. */
  #pending: Buffer = EMPTY;
  /** Body bytes (or bytes of the current chunk) still to come. */
  #remaining = 0;
  #reusable = false;
  #keepAliveHintMs: number | undefined = undefined;
  #trailerBytes = 0;

  constructor(sink: ResponseSink, maxHeaderBytes: number) {
    this.#sink = sink;
    this.#maxHeaderBytes = maxHeaderBytes;
  }

  /** Ready for the next response, reported to `sink`. */
  reset(sink: ResponseSink): void {
    this.#sink = sink;
    this.#state = State.Head;
    this.#pending = EMPTY;
    this.#remaining = 0;
    this.#reusable = false;
    this.#keepAliveHintMs = undefined;
    this.#trailerBytes = 0;
  }

  /** Whether a response has been read to its end. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Whether the body runs to the end of the connection (so the end of the connection ends it). */
  get untilClose(): boolean {
    return this.#state === State.UntilClose;
  }

  /** How the response ended; valid once `done`. */
  get end(): ResponseEnd {
    return { reusable: this.#reusable, keepAliveHintMs: this.#keepAliveHintMs };
  }

  /** Not a byte of the answer read yet (1xx answers aside): a connection that ends here ended without answering. */
  get idle(): boolean {
    return this.#state === State.Head && this.#pending.length === 0;
  }

  /**
   * Reads `chunk`. Returns how many of its bytes belong to this response (all of them unless it
   * ended inside the chunk). Throws a {@link ResponseParseError}.
   */
  execute(chunk: Buffer): number {
    let offset = 0;
    const length = chunk.length;
    while (offset < length && this.#state !== State.Done) {
      switch (this.#state) {
        case State.Head:
          offset = this.#readHead(chunk, offset);
          break;
        case State.Sized:
          offset = this.#readCounted(chunk, offset, State.Done);
          break;
        case State.UntilClose:
          this.#sink.data(offset === 0 ? chunk : chunk.subarray(offset));
          offset = length;
          break;
        case State.ChunkSize:
          offset = this.#readChunkSize(chunk, offset);
          break;
        case State.ChunkData:
          offset = this.#readCounted(chunk, offset, State.ChunkDataEnd);
          break;
        case State.ChunkDataEnd:
          offset = this.#readChunkEnd(chunk, offset);
          break;
        case State.Trailers:
          offset = this.#readTrailers(chunk, offset);
          break;
      }
    }
    return offset;
  }

  /** The connection ended: completes a body read until close; false when the response was cut short. */
  finish(): boolean {
    if (this.#state === State.UntilClose) {
      this.#state = State.Done;
      return true;
    }
    return this.#state === State.Done;
  }

  /** Body bytes counted by `#remaining` (a Content-Length body, or one chunk's data); then `next`. */
  #readCounted(chunk: Buffer, offset: number, next: State): number {
    const take = Math.min(this.#remaining, chunk.length - offset);
    this.#sink.data(chunk.subarray(offset, offset + take));
    this.#remaining -= take;
    if (this.#remaining === 0) this.#state = next;
    return offset + take;
  }

  #readHead(chunk: Buffer, offset: number): number {
    const data = this.#take(chunk, offset);
    const end = data.indexOf(CRLF_CRLF);
    if (end < 0) {
      if (data.length > this.#maxHeaderBytes) throw new ResponseParseError(`the header block is larger than ${this.#maxHeaderBytes} bytes`);
      // A head whose lines end in LF alone never shows the CRLF CRLF that ends it: refused now, as
      // undici refuses it, not waited on until the call's deadline (RFC 9112 §2.2 lets a recipient
      // reject a bare LF). A complete head with one is refused by the line checks in #head.
      if (hasBareLf(data)) throw new ResponseParseError('a line of the head ends with LF alone, not CRLF');
      this.#pending = data;
      return chunk.length;
    }
    if (end > this.#maxHeaderBytes) throw new ResponseParseError(`the header block is larger than ${this.#maxHeaderBytes} bytes`);
    // Where, in `chunk`, the byte after the head is.
    const next = chunk.length - (data.length - (end + 4));
    this.#pending = EMPTY;
    this.#head(data.toString('latin1', 0, end));
    return next;
  }

  /** `chunk` from `offset`, after the bytes kept from earlier reads. */
  #take(chunk: Buffer, offset: number): Buffer {
    const rest = offset === 0 ? chunk : chunk.subarray(offset);
    return this.#pending.length === 0 ? rest : Buffer.concat([this.#pending, rest]);
  }

  #head(text: string): void {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const statusLine = text.slice(0, eol);
    const status = STATUS_LINE.exec(statusLine);
    if (!status) throw new ResponseParseError(`not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
    const code = Number(status[2]);
    if (code < 100) throw new ResponseParseError(`status ${code}`);
    const headers: IncomingHttpHeaders = {};
    let contentLength: number | undefined;
    let chunked = false;
    let transferEncoded = false;
    let close = status[1] === '0';
    const lines = eol < text.length ? text.slice(eol + 2) : '';
    if (!FIELD_LINES.test(lines)) throwAtBadLine(lines);
    let at = 0;
    while (at < lines.length) {
      let end = lines.indexOf('\r\n', at);
      if (end < 0) end = lines.length;
      const colon = lines.indexOf(':', at); // within the line: FIELD_LINES holds
      const key = NAMES.get(lines.slice(at, colon));
      const value = trimOws(lines, colon + 1, end);
      at = end + 2;
      const had = headers[key];
      if (had === undefined) headers[key] = value;
      else if (Array.isArray(had)) had.push(value);
      else headers[key] = [had, value];
      switch (key) {
        case 'content-length':
          contentLength = contentLengthOf(value, contentLength);
          break;
        case 'transfer-encoding':
          transferEncoded = true;
          // The last coding decides: chunked frames the body, anything else runs to the close.
          chunked = /(?:^|,)[ \t]*chunked[ \t]*$/i.test(value);
          break;
        case 'connection':
          if (value !== 'keep-alive' && CLOSE.test(value)) close = true;
          break;
        case 'keep-alive':
          this.#keepAliveHintMs = KEEP_ALIVE_HINTS.get(value) ?? undefined;
          break;
      }
    }
    if (code < 200) {
      if (code === 101) throw new ResponseParseError('101 Switching Protocols to a request that asked for no upgrade');
      // Informational: the final answer follows on the same connection.
      this.#keepAliveHintMs = undefined;
      return;
    }
    this.#sink.head(code, status[3] ?? '', headers);
    if (code === 204 || code === 304) {
      this.#reusable = !close && !transferEncoded;
      this.#state = State.Done;
    } else if (transferEncoded) {
      // Transfer-Encoding overrides Content-Length; a message with both is not trusted to frame another.
      this.#reusable = chunked && !close && contentLength === undefined;
      this.#state = chunked ? State.ChunkSize : State.UntilClose;
    } else if (contentLength !== undefined) {
      this.#reusable = !close;
      this.#remaining = contentLength;
      this.#state = contentLength === 0 ? State.Done : State.Sized;
    } else {
      this.#reusable = false;
      this.#state = State.UntilClose;
    }
  }

  /** One CRLF-ended line from `chunk` at `offset`, or undefined (kept for the next read) when it has not ended yet. */
  #line(chunk: Buffer, offset: number, max: number): { line: string; next: number } | undefined {
    const lf = chunk.indexOf(0x0a, offset);
    if (lf < 0) {
      const pending = this.#take(chunk, offset);
      // The line so far, and perhaps its CR.
      if (pending.length > max + 1) throw new ResponseParseError('a chunk line is too long');
      this.#pending = pending;
      return undefined;
    }
    const data = this.#pending.length === 0 ? chunk.subarray(offset, lf + 1) : Buffer.concat([this.#pending, chunk.subarray(offset, lf + 1)]);
    this.#pending = EMPTY;
    if (data.length < 2 || data[data.length - 2] !== 0x0d) throw new ResponseParseError('a chunk line does not end with CRLF');
    if (data.length - 2 > max) throw new ResponseParseError('a chunk line is too long');
    return { line: data.toString('latin1', 0, data.length - 2), next: lf + 1 };
  }

  #readChunkSize(chunk: Buffer, offset: number): number {
    const read = this.#line(chunk, offset, MAX_CHUNK_LINE);
    if (!read) return chunk.length;
    const size = CHUNK_SIZE.exec(read.line);
    if (!size) throw new ResponseParseError(`invalid chunk size line ${JSON.stringify(read.line.slice(0, 40))}`);
    this.#remaining = parseInt(size[1]!, 16);
    this.#state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
    return read.next;
  }

  #readChunkEnd(chunk: Buffer, offset: number): number {
    // Only CRLF may follow a chunk's data.
    if ((this.#pending.length > 0 ? this.#pending[0] : chunk[offset]) !== 0x0d) throw new ResponseParseError('chunk data is longer than its size');
    const read = this.#line(chunk, offset, 0);
    if (!read) return chunk.length;
    if (read.line !== '') throw new ResponseParseError('chunk data is longer than its size');
    this.#state = State.ChunkSize;
    return read.next;
  }

  #readTrailers(chunk: Buffer, offset: number): number {
    const read = this.#line(chunk, offset, this.#maxHeaderBytes);
    if (!read) return chunk.length;
    this.#trailerBytes += read.line.length + 2;
    if (this.#trailerBytes > this.#maxHeaderBytes) throw new ResponseParseError(`the trailers are larger than ${this.#maxHeaderBytes} bytes`);
    if (read.line === '') {
      this.#state = State.Done;
      return read.next;
    }
    // Trailer fields are checked as fields and otherwise dropped: nothing here reads them.
    const colon = read.line.indexOf(':');
    if (colon <= 0 || !isToken(read.line.slice(0, colon)) || !isFieldValue(read.line.slice(colon + 1))) {
      throw new ResponseParseError(`a trailer line is not "name: value": ${JSON.stringify(read.line.slice(0, 80))}`);
    }
    return read.next;
  }
}

/** The server's `Keep-Alive: timeout=N` as ms (null without a timeout), for the values read before: a server sends the same one on every answer. */
const KEEP_ALIVE_HINTS = new BoundedMemo(
  (value: string) => {
    const hint = KEEP_ALIVE_TIMEOUT.exec(value);
    return hint ? Number(hint[1]) * 1000 : null;
  },
  { max: 64, keep: shortKey(128) },
);

/** Whether `data` holds an LF that no CR comes before (only read while a head is incomplete). */
function hasBareLf(data: Buffer): boolean {
  for (let lf = data.indexOf(0x0a); lf >= 0; lf = data.indexOf(0x0a, lf + 1)) if (lf === 0 || data[lf - 1] !== 0x0d) return true;
  return false;
}

/** Throws the error of the first header line that is not `name: value` (FIELD_LINES refused `lines`). */
function throwAtBadLine(lines: string): never {
  for (const line of lines.split('\r\n')) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!isToken(name)) throw new ResponseParseError(`a header line is not "name: value": ${JSON.stringify(line.slice(0, 80))}`);
    if (!isFieldValue(trimOws(line.slice(colon + 1)))) throw new ResponseParseError(`header ${name} has a character not allowed in a value`);
  }
  throw new ResponseParseError('the header block is not "name: value" lines');
}

/** A Content-Length value ("5", or a list of equal values "5, 5"); one that disagrees with an earlier one is an error. */
function contentLengthOf(value: string, earlier: number | undefined): number {
  if (earlier === undefined && DIGITS.test(value)) return Number(value); // one value, as nearly every answer has
  let length: number | undefined = earlier;
  for (const part of value.split(',')) {
    const digits = trimOws(part);
    if (!DIGITS.test(digits)) throw new ResponseParseError(`Content-Length ${JSON.stringify(value.slice(0, 40))} is not a number of bytes`);
    const n = Number(digits);
    if (length !== undefined && n !== length) throw new ResponseParseError(`two Content-Length values disagree (${length}, ${n})`);
    length = n;
  }
  return length!;
}
