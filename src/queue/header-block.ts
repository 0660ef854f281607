/**
 * A NATS header block written straight as text. nats.js's `MsgHdrs` keeps a Map of arrays, and
 * each `set` or `append` copies its key list, filters it and checks the name character by
 * character into a new array: for an envelope of ~15 headers that was ~23 % of everything the
 * gateway allocated per request (sampling heap profile under load, BENCHMARKS.md). This writes
 * the same bytes nats.js's `encode()` would for the same calls: names in the order first written,
 * the values of one name together in order, values trimmed. Within the limits the envelope keeps:
 * a name is `set` at most once, and never one that is also appended.
 */

import { BoundedMemo, shortKey } from '../bounded-memo.js';
import { trimOws } from '../http/fields.js';

/** A header name nats.js accepts: printable ASCII (33–126) except ":". */
const VALID_NAME = /^[!-9;-~]+$/;

/**
 * Whether `value` holds a CR or an LF (nats.js refuses both in a value). Two `indexOf`s of one
 * character cost a fraction of a regular expression's call (`/[\r\n]/.test`) on strings this
 * short, and the gateway writes ~15 values per `202`: `encodeEnvelopeBlock` 29,641 → 26,433
 * instructions (`npm run bench:instructions -- --only envelope.block`).
 */
function hasCrOrLf(value: string): boolean {
  return value.indexOf('\r') >= 0 || value.indexOf('\n') >= 0;
}

/** Whether a name is valid, for the names seen before: an envelope writes the same ones on every message (its own, and the callers' usual few). */
const VALID_NAMES = new BoundedMemo((name: string) => VALID_NAME.test(name), { max: 1_024, keep: shortKey(128) });

/** Where an envelope's headers are written: nats.js's `MsgHdrs` or a {@link HeaderBlock}. */
export interface HeaderSink {
  set(name: string, value: string): void;
  append(name: string, value: string): void;
}

export class HeaderBlock implements HeaderSink {
  #text = 'NATS/1.0';
  /** Appended and not yet written: a name's values are written together, at its first place. */
  readonly #names: string[] = [];
  readonly #values: string[] = [];
  #valid = true;

  set(name: string, value: string): void {
    this.#flush();
    this.#line(name, value);
  }

  append(name: string, value: string): void {
    this.#names.push(name);
    this.#values.push(value);
  }

  /**
   * The encoded block, or undefined when a name or value is one nats.js refuses (a name outside
   * printable ASCII or with ":", a value with CR or LF): its `MsgHdrs` then says why.
   */
  encode(): Uint8Array | undefined {
    this.#flush();
    // Buffer.from, not TextEncoder: a slice of node's buffer pool (~0.3 µs) instead of a new ArrayBuffer (~1.3 µs).
    return this.#valid ? Buffer.from(`${this.#text}\r\n\r\n`, 'utf8') : undefined;
  }

  #line(name: string, value: string): void {
    if (!VALID_NAMES.get(name) || hasCrOrLf(value)) this.#valid = false;
    this.#text += `\r\n${name}: ${value.trim()}`;
  }

  #flush(): void {
    const names = this.#names;
    // Every `set` flushes first, and the envelope appends only after its sets: most flushes have
    // nothing to write (setting `length` on an empty array is not free: ~0.7 % of the gateway's CPU).
    if (names.length === 0) return;
    // Quadratic in appended names, without a Map or an array per name: a request has a few, and
    // at most max_header_count.
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (names.indexOf(name) < i) continue;
      for (let j = i; j < names.length; j++) if (names[j] === name) this.#line(name, this.#values[j]!);
    }
    names.length = 0;
    this.#values.length = 0;
  }
}

const textDecoder = new TextDecoder();
/** A name nats.js rejects when it parses a block: outside printable ASCII (":" cannot occur, the line is split there). */
const INVALID_NAME_CHAR = /[^!-~]/;
/**
 * A block none of whose lines the checks below could refuse: a status line, then lines of a name
 * of printable ASCII (no ":"), a colon and a value of printable ASCII, spaces and tabs, then the
 * blank line. Any other block (a value outside ASCII, a line without a colon…) is checked line by line.
 */
const PLAIN_BLOCK = /^[^\r\n]*(?:\r\n[!-9;-~]+:[\t\x20-\x7e]*)*(?:\r\n\r\n)?$/;

/**
 * A delivered header block read as nats.js's `MsgHdrsImpl.decode` reads it, without its header
 * object: each name (exactly as written) with its values in order, names in the order first seen,
 * values trimmed, lines without ":" skipped, the status line ignored. Iterates as `MsgHdrs` does.
 * Undefined when nats.js would refuse the block (a name outside printable ASCII, a value with a
 * lone CR or LF): its own parser then says why. nats.js checks every name character by character
 * into a new array and copies its key list on each value (~4 % of what the worker allocated per
 * invocation); this is a scan and a Map.
 */
export function readHeaderBlock(block: Uint8Array): Map<string, string[]> | undefined {
  const s = textDecoder.decode(block);
  const headers = new Map<string, string[]>();
  let start = s.indexOf('\r\n');
  if (start < 0) return headers;
  start += 2;
  // A block as the gateway writes it has nothing for the per-line checks to find: one test of the
  // whole block instead of two per line.
  const plain = PLAIN_BLOCK.test(s);
  while (start < s.length) {
    let end = s.indexOf('\r\n', start);
    if (end < 0) end = s.length;
    const colon = s.indexOf(':', start);
    if (colon >= 0 && colon < end) {
      const name = s.slice(start, colon);
      // In a plain block only spaces and tabs can be white space: trimmed by index, one string instead of two.
      const value = plain ? trimOws(s, colon + 1, end) : s.slice(colon + 1, end).trim();
      if (!plain && (INVALID_NAME_CHAR.test(name) || hasCrOrLf(value))) return undefined;
      const values = headers.get(name);
      if (values === undefined) headers.set(name, [value]);
      else values.push(value);
    }
    start = end + 2;
  }
  return headers;
}
