/**
 * Reading a batch request's items as they arrive, never the whole body at once: NDJSON (one JSON
 * object per line) or one JSON array of objects. Pure apart from consuming the chunks it is given;
 * the route hands it the request stream. Every problem is a coded error naming the item (0-based
 * index) and the line it starts on (1-based), so the caller learns exactly where its batch stopped.
 */
import { BatchItemInvalidError, BatchTooLargeError, isAsyncFnError } from '../errors.js';
import { confinePathSuffix } from '../functions/index.js';
import { isToken } from '../http/fields.js';
import { isHopByHop, isReservedHeader, type HeaderPairs } from '../http/headers.js';
import { callbackUrlFrom } from './invocation-target.js';

export type BatchFormat = 'ndjson' | 'json';

/** One item's JSON text as read, before it is checked. */
export interface RawBatchItem {
  /** 0-based position among the batch's items. */
  readonly index: number;
  /** 1-based line of the body the item starts on. */
  readonly line: number;
  readonly text: string;
}

export interface BatchReadLimits {
  /** Most items (`max_batch_items`): one more is refused with 413. */
  readonly maxItems: number;
  /** Most bytes of the whole body (`max_batch_bytes`): past it 413. */
  readonly maxBytes: number;
  /** Most bytes of one item's JSON text: `itemTextLimit` of the body limit. */
  readonly maxItemBytes: number;
}

/** Room in one item's JSON text beside its body: its headers, query, path, callback. */
const ITEM_OVERHEAD_BYTES = 64 * 1024;

/**
 * The most bytes of JSON text one item may take when its body may take `maxBodyBytes`: a body
 * written at its most escaped (`\u0001`, six characters for one byte; base64 takes 4/3) and the
 * item's other fields. The body itself is then held to `maxBodyBytes` once decoded, so no body
 * under the limit is refused for how it is written; the line's buffer stays bounded.
 */
export function itemTextLimit(maxBodyBytes: number): number {
  return maxBodyBytes * 6 + ITEM_OVERHEAD_BYTES;
}

/** One invocation of a batch, checked. */
export interface BatchItem {
  readonly index: number;
  readonly line: number;
  readonly body: Uint8Array;
  /** Headers for the function, lower-cased names, one pair per value (hop-by-hop and reserved ones dropped). */
  readonly headers: HeaderPairs;
  /** Raw query string without "?", "" when absent. */
  readonly query: string;
  /** Path suffix after the function's name, "" or "/a/b". */
  readonly path: string;
  /** This item's own X-Callback-Url (absolute http(s)); absent = none. */
  readonly callbackUrl?: string | undefined;
}

const NEWLINE = 0x0a;
const decoder = new TextDecoder('utf-8', { fatal: true });

function tooLarge(index: number, line: number, reason: string): BatchTooLargeError {
  return new BatchTooLargeError(index, line, reason);
}

function invalid(index: number, line: number, reason: string): BatchItemInvalidError {
  return new BatchItemInvalidError(index, line, reason);
}

/** Decodes the UTF-8 bytes of one item; a malformed sequence is the item's problem. */
function textOf(parts: Uint8Array[], index: number, line: number): string {
  try {
    return decoder.decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  } catch {
    throw invalid(index, line, 'not valid UTF-8');
  }
}

/**
 * Splits the body into items' JSON texts as the chunks come. Stops with BatchTooLargeError past
 * `maxItems`, `maxBytes` or `maxItemBytes`, and with BatchItemInvalidError on a body that is not
 * the format's shape (for JSON: no array, garbage between items). An item's JSON itself is checked
 * by {@link parseBatchItem}. A body that ends in the middle of an item (NDJSON: a last line without
 * newline is an item; JSON: an unclosed array) is reported only when the body ended normally; if
 * the chunks fail (the client left), that error propagates and the partial item is dropped.
 */
export async function* splitBatchItems(chunks: AsyncIterable<Uint8Array>, format: BatchFormat, limits: BatchReadLimits): AsyncGenerator<RawBatchItem> {
  yield* format === 'ndjson' ? splitNdjson(chunks, limits) : splitJsonArray(chunks, limits);
}

async function* splitNdjson(chunks: AsyncIterable<Uint8Array>, limits: BatchReadLimits): AsyncGenerator<RawBatchItem> {
  let bytes = 0;
  let line = 1;
  let index = 0;
  let parts: Uint8Array[] = [];
  let partBytes = 0;
  const emit = function* (): Generator<RawBatchItem> {
    const text = textOf(parts, index, line).replace(/\r$/, '');
    parts = [];
    partBytes = 0;
    if (text.trim() !== '') {
      if (index >= limits.maxItems) throw tooLarge(index, line, `more than max_batch_items (${limits.maxItems}) items`);
      yield { index, line, text };
      index++;
    }
  };
  for await (const chunk of chunks) {
    bytes += chunk.length;
    if (bytes > limits.maxBytes) throw tooLarge(index, line, `the batch exceeds max_batch_bytes (${limits.maxBytes} bytes)`);
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      partBytes += nl - start;
      if (partBytes > limits.maxItemBytes) throw tooLarge(index, line, `the item exceeds ${limits.maxItemBytes} bytes`);
      parts.push(chunk.subarray(start, nl));
      yield* emit();
      line++;
      start = nl + 1;
    }
    if (start < chunk.length) {
      partBytes += chunk.length - start;
      if (partBytes > limits.maxItemBytes) throw tooLarge(index, line, `the item exceeds ${limits.maxItemBytes} bytes`);
      parts.push(chunk.subarray(start));
    }
  }
  yield* emit();
}

/**
 * A scanner for one top-level JSON array: it only tracks strings, escapes and nesting depth to find
 * where each element ends (JSON.parse checks the element itself). UTF-8 continuation bytes are all
 * ≥ 0x80, so they never look like the ASCII structure characters it looks for.
 */
async function* splitJsonArray(chunks: AsyncIterable<Uint8Array>, limits: BatchReadLimits): AsyncGenerator<RawBatchItem> {
  let bytes = 0;
  let line = 1;
  let index = 0;
  // before: before "["; between: expecting an element or "]"; inside: in an element (up to its "," or "]"); end: after "]".
  type Where = 'before' | 'between' | 'inside' | 'end';
  let where = 'before' as Where;
  let sawComma = false;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let parts: Uint8Array[] = [];
  let partBytes = 0;
  let itemLine = 1;
  const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
  const finishItem = (chunk: Uint8Array, start: number, end: number): RawBatchItem => {
    parts.push(chunk.subarray(start, end));
    const item = { index, line: itemLine, text: textOf(parts, index, itemLine) };
    parts = [];
    partBytes = 0;
    index++;
    return item;
  };
  for await (const chunk of chunks) {
    bytes += chunk.length;
    if (bytes > limits.maxBytes) throw tooLarge(index, line, `the batch exceeds max_batch_bytes (${limits.maxBytes} bytes)`);
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (where === 'inside') {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true;
          else if (c === 0x22) inString = false;
        } else if (c === 0x22) inString = true;
        else if (c === 0x7b || c === 0x5b) depth++;
        else if (c === 0x7d || c === 0x5d) {
          if (depth === 0) {
            // "]" closing the array right after a scalar element: the element ends here.
            yield finishItem(chunk, start, i);
            where = 'end';
          } else depth--;
        } else if (c === 0x2c && depth === 0) {
          yield finishItem(chunk, start, i);
          where = 'between';
          sawComma = true;
        }
        if (c === NEWLINE) line++;
        continue;
      }
      if (c === NEWLINE) line++;
      if (isSpace(c)) continue;
      if (where === 'before') {
        if (c !== 0x5b) throw invalid(index, line, 'a JSON batch must be one array of items (application/x-ndjson takes one item per line)');
        where = 'between';
        continue;
      }
      if (where === 'end') throw invalid(index, line, 'unexpected data after the closing "]"');
      // between
      if (c === 0x5d) {
        if (sawComma) throw invalid(index, line, 'a trailing "," before "]"');
        where = 'end';
        continue;
      }
      if (c === 0x2c) throw invalid(index, line, 'an empty item (",,")');
      if (index >= limits.maxItems) throw tooLarge(index, line, `more than max_batch_items (${limits.maxItems}) items`);
      where = 'inside';
      sawComma = false;
      itemLine = line;
      start = i;
      depth = 0;
      inString = c === 0x22;
      // An object or array element counts its own brackets; it ends at the "," or "]" after them.
      if (c === 0x7b || c === 0x5b) depth = 1;
    }
    if (where === 'inside') {
      partBytes += chunk.length - start;
      if (partBytes > limits.maxItemBytes) throw tooLarge(index, itemLine, `the item exceeds ${limits.maxItemBytes} bytes`);
      parts.push(chunk.subarray(start));
    }
  }
  if (where === 'before') return;
  if (where !== 'end') throw invalid(index, line, 'the JSON array is not closed');
}

/** Item fields besides these are refused, so that a typo ("header") is not silently ignored. */
const ITEM_FIELDS = new Set(['body', 'bodyEncoding', 'headers', 'query', 'path', 'callbackUrl']);
/** A header value: no control characters but tab. */
const FIELD_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
const utf8 = new TextEncoder();

/**
 * Checks one item: `{"body"?: string | <any JSON>, "bodyEncoding"?: "base64", "headers"?: {name:
 * string | string[]}, "query"?: string, "path"?: "/x", "callbackUrl"?: "https://…"}`. A string
 * body is sent as its UTF-8 bytes (or decoded from base64); any other JSON value as its JSON text,
 * with `Content-Type: application/json` unless the item's headers name one.
 */
export function parseBatchItem(raw: RawBatchItem, maxBodyBytes: number): BatchItem {
  const { index, line } = raw;
  let value: unknown;
  try {
    value = JSON.parse(raw.text);
  } catch (err) {
    throw invalid(index, line, `invalid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(index, line, 'an item must be a JSON object');
  const item = value as Record<string, unknown>;
  const unknown = Object.keys(item).filter((k) => !ITEM_FIELDS.has(k));
  if (unknown.length > 0) throw invalid(index, line, `unknown field "${unknown[0]}" (expected ${[...ITEM_FIELDS].join(', ')})`);

  const headers = headersOf(item.headers, index, line);
  let body: Uint8Array;
  const encoding = item.bodyEncoding;
  if (encoding !== undefined && encoding !== 'base64') throw invalid(index, line, 'bodyEncoding must be "base64" when given');
  if (item.body === undefined) {
    if (encoding !== undefined) throw invalid(index, line, 'bodyEncoding without a body');
    body = new Uint8Array(0);
  } else if (typeof item.body === 'string') {
    if (encoding === 'base64') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(item.body) || item.body.length % 4 !== 0) throw invalid(index, line, 'body is not valid base64');
      body = Buffer.from(item.body, 'base64');
    } else body = utf8.encode(item.body);
  } else {
    if (encoding !== undefined) throw invalid(index, line, 'bodyEncoding "base64" needs a string body');
    body = utf8.encode(JSON.stringify(item.body));
    if (!headers.some(([name]) => name === 'content-type')) headers.push(['content-type', 'application/json']);
  }
  if (body.length > maxBodyBytes) throw tooLarge(index, line, `the body exceeds max_body_size (${maxBodyBytes} bytes)`);

  if (item.query !== undefined && typeof item.query !== 'string') throw invalid(index, line, 'query must be a string');
  const query = (item.query ?? '').replace(/^\?/, '');
  if (/[\s#]/.test(query)) throw invalid(index, line, 'query must be a raw query string (no spaces or "#")');
  if (item.path !== undefined && typeof item.path !== 'string') throw invalid(index, line, 'path must be a string');
  const path = checked(index, line, () => (item.path === undefined || item.path === '' ? '' : confinePathSuffix(item.path as string)));
  if (path !== '' && !path.startsWith('/')) throw invalid(index, line, 'path must start with "/"');
  if (item.callbackUrl !== undefined && typeof item.callbackUrl !== 'string') throw invalid(index, line, 'callbackUrl must be a string');
  const callbackUrl = checked(index, line, () => callbackUrlFrom(item.callbackUrl as string | undefined));
  return { index, line, body, headers, query, path, ...(callbackUrl === undefined ? {} : { callbackUrl }) };
}

/** A coded refusal from a shared check (path, callback URL) becomes this item's refusal. */
function checked<T>(index: number, line: number, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (isAsyncFnError(err)) throw invalid(index, line, err.message);
    throw err;
  }
}

/** The item's headers as the function gets them: as a single request's (forwarded-headers.ts), malformed ones refused. */
function headersOf(value: unknown, index: number, line: number): HeaderPairs {
  if (value === undefined) return [];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(index, line, 'headers must be an object of name: value');
  const pairs: HeaderPairs = [];
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (!isToken(name)) throw invalid(index, line, `invalid header name "${name.slice(0, 64)}"`);
    const values = Array.isArray(v) ? v : [v];
    for (const one of values) {
      if (typeof one !== 'string' || !FIELD_VALUE.test(one)) throw invalid(index, line, `invalid value of header "${name}"`);
      const lower = name.toLowerCase();
      // As for a single request: hop-by-hop headers describe no invocation, reserved ones are asyncfn's and NATS's.
      if (isHopByHop(lower) || isReservedHeader(lower)) continue;
      pairs.push([lower, one.trim()]);
    }
  }
  return pairs;
}
