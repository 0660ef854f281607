import { headers as natsHeaders, type MsgHdrs, type MsgHdrsImpl } from '@nats-io/nats-core';
import { HeaderBlock, type HeaderSink } from './header-block.js';
import type { Invocation, PayloadRef } from '../../actors/invocation.types.js';
import { BoundedMemo, shortKey } from '../bounded-memo.js';
import { CALL_ID_RULE, isCallId } from './call-id.js';
import { isFieldValue, isToken } from '../http/fields.js';
import { httpUrl } from '../http/http-url.js';
import { AsyncFnError } from '../errors.js';

/** The domain type lives with the machines (actors/); the envelope is its wire form. */
export type { Invocation };

/**
 * The message envelope: metadata in NATS headers, the request body as the raw payload (no JSON or
 * base64 wrapping, so a 1 MiB body costs 1 MiB). `Asyncfn-Version` lets the format evolve: a worker
 * refuses versions it does not know instead of guessing.
 */
export const ENVELOPE_VERSION = '1';

/** Header names of the envelope. Callers' headers travel under {@link CALLER_HEADER_PREFIX}. */
export const EnvelopeHeader = {
  version: 'Asyncfn-Version',
  callId: 'Asyncfn-Call-Id',
  /** Optional (added within version 1: older messages lack it, older workers ignore it). */
  parentCallId: 'Asyncfn-Parent-Call-Id',
  functionName: 'Asyncfn-Function',
  namespace: 'Asyncfn-Namespace',
  method: 'Asyncfn-Method',
  path: 'Asyncfn-Path',
  query: 'Asyncfn-Query',
  callbackUrl: 'Asyncfn-Callback-Url',
  enqueuedAt: 'Asyncfn-Enqueued-At',
  expiresAt: 'Asyncfn-Expires-At',
  notBefore: 'Asyncfn-Not-Before',
  storeResult: 'Asyncfn-Store-Result',
  /** Delayed invocations only: the lane subject the scheduler moves it to when due (not decoded). */
  dueSubject: 'Asyncfn-Due-Subject',
  /** Optional (added within version 1): the batch the invocation is an item of; older messages lack it. */
  batchId: 'Asyncfn-Batch-Id',
  /** Optional (added within version 1): the caller's X-Timeout in ms; older workers ignore it. */
  timeout: 'Asyncfn-Timeout',
  /**
   * Optional (added within version 1): a body too large for the message is stored as this object
   * of the payload bucket (the claim check; the payload is then empty). Older workers do not know
   * it: a gateway only writes it when `max_large_body_size` admits such a body.
   */
  bodyRef: 'Asyncfn-Body-Ref',
  /** With bodyRef: the object's size in bytes. */
  bodySize: 'Asyncfn-Body-Size',
  /** With bodyRef: the object's lower-case hex SHA-256. */
  bodySha256: 'Asyncfn-Body-Sha256',
  /** JetStream's deduplication id: set from the caller's Idempotency-Key, never read back. */
  msgId: 'Nats-Msg-Id',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

/** What a batch id may be: one NATS subject token and part of a KV key (the gateway makes UUIDs). */
export const BATCH_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Namespacing keeps a caller's headers from colliding with `Nats-*` or our own headers. */
export const CALLER_HEADER_PREFIX = 'Asyncfn-H-';

/**
 * NATS header values cannot hold CR or LF, and NATS trims them (JavaScript whitespace, U+00A0
 * included) on both ends. A caller's value NATS would alter (an HTTP header value may end in
 * U+00A0) is written as this prefix plus the value with its first and last character (when
 * whitespace), CR, LF and "%" percent-encoded (UTF-8), as is a value that starts with the prefix;
 * every other value is written as is.
 */
export const ESCAPED_VALUE_PREFIX = '=?pct?';

/** A message as it came off a stream: its headers (if any) and its body. */
export interface StoredMessage {
  readonly headers?: MsgHdrs | undefined;
  readonly data: Uint8Array;
}

export interface EncodedEnvelope {
  readonly headers: MsgHdrs;
  readonly data: Uint8Array;
}

export function encodeEnvelope(invocation: Invocation): EncodedEnvelope {
  const h = natsHeaders();
  writeEnvelope(invocation, h);
  return { headers: h, data: invocation.body };
}

/**
 * The envelope's header block, encoded, with `extra` set last: the bytes
 * `encodeEnvelope(invocation).headers` (then `.set(...extra)`) would encode, without building
 * nats.js's `MsgHdrs` (header-block.ts). The gateway publishes every invocation with it.
 */
export function encodeEnvelopeBlock(invocation: Invocation, extra?: readonly [name: string, value: string]): Uint8Array {
  const block = new HeaderBlock();
  writeEnvelope(invocation, block);
  if (extra !== undefined) block.set(extra[0], extra[1]);
  const encoded = block.encode();
  if (encoded !== undefined) return encoded;
  // A name or value NATS refuses: nats.js says which, as it did before.
  const { headers } = encodeEnvelope(invocation);
  if (extra !== undefined) headers.set(extra[0], extra[1]);
  return (headers as MsgHdrsImpl).encode();
}

/** Every header of the envelope, in its order: the envelope's own set once each, then the caller's appended. */
function writeEnvelope(invocation: Invocation, h: HeaderSink): void {
  h.set(EnvelopeHeader.version, ENVELOPE_VERSION);
  h.set(EnvelopeHeader.callId, invocation.callId);
  h.set(EnvelopeHeader.functionName, invocation.functionName);
  h.set(EnvelopeHeader.namespace, invocation.namespace);
  h.set(EnvelopeHeader.method, invocation.method);
  h.set(EnvelopeHeader.enqueuedAt, String(invocation.enqueuedAtMs));
  if (invocation.expiresAtMs !== undefined) h.set(EnvelopeHeader.expiresAt, String(invocation.expiresAtMs));
  if (invocation.notBeforeMs !== undefined) h.set(EnvelopeHeader.notBefore, String(invocation.notBeforeMs));
  if (invocation.storeResult) h.set(EnvelopeHeader.storeResult, 'true');
  if (invocation.timeoutMs !== undefined) h.set(EnvelopeHeader.timeout, String(invocation.timeoutMs));
  setIfPresent(h, EnvelopeHeader.parentCallId, invocation.parentCallId);
  if (invocation.bodyRef !== undefined) {
    h.set(EnvelopeHeader.bodyRef, invocation.bodyRef.name);
    h.set(EnvelopeHeader.bodySize, String(invocation.bodyRef.size));
    h.set(EnvelopeHeader.bodySha256, invocation.bodyRef.sha256);
  }
  if (invocation.batchId !== undefined) h.set(EnvelopeHeader.batchId, invocation.batchId);
  if (invocation.msgId !== undefined) h.set(EnvelopeHeader.msgId, invocation.msgId);
  setIfPresent(h, EnvelopeHeader.path, invocation.path);
  setIfPresent(h, EnvelopeHeader.query, invocation.query);
  setIfPresent(h, EnvelopeHeader.callbackUrl, invocation.callbackUrl);
  setIfPresent(h, EnvelopeHeader.traceparent, invocation.traceparent);
  setIfPresent(h, EnvelopeHeader.tracestate, invocation.tracestate);
  // Lower-cased: NATS keys are case-sensitive, and one name in two cases would split its values.
  for (const [name, value] of invocation.headers) h.append(CALLER_KEYS.get(name), escapeValue(value));
}

/**
 * The callers' header names, each with the name it travels under (`Content-Type` under
 * `Asyncfn-H-content-type`): callers send the same few on request after request.
 */
const CALLER_KEYS = new BoundedMemo((name: string) => CALLER_HEADER_PREFIX + name.toLowerCase(), { max: 1_024, keep: shortKey(128) });

/** A message on the stream that is not a valid envelope; it can never succeed, so it must not be retried. */
export class PoisonMessageError extends AsyncFnError<'ASYNCFN_ERR_POISON_MESSAGE'> {
  constructor(readonly reasons: readonly string[]) {
    super('ASYNCFN_ERR_POISON_MESSAGE', [reasons.join('; ')]);
  }
}

const CALLER_PREFIX_LOWER = CALLER_HEADER_PREFIX.toLowerCase();
type EnvelopeHeaderName = (typeof EnvelopeHeader)[keyof typeof EnvelopeHeader];
const ENVELOPE_NAMES: readonly EnvelopeHeaderName[] = Object.values(EnvelopeHeader);
/**
 * Each envelope header's place in {@link ENVELOPE_NAMES}, by its name as the gateway writes it and
 * in lower case: a delivered name is looked up as it comes, and lower-cased only when it is not
 * found (another case, or a caller's header).
 */
const PLACE: ReadonlyMap<string, number> = new Map(ENVELOPE_NAMES.flatMap((name, i) => [[name, i] as const, [name.toLowerCase(), i] as const]));

/**
 * The names delivered headers have (`Asyncfn-H-content-type`), each with the caller's header name it
 * carries (`content-type`), or null when it is not a caller's header ('' when what it carries is
 * no header name): a worker reads the same few on message after message.
 */
const CALLER_NAMES = new BoundedMemo(
  (key: string) => {
    const lower = key.toLowerCase();
    if (!lower.startsWith(CALLER_PREFIX_LOWER)) return null;
    const name = lower.slice(CALLER_PREFIX_LOWER.length);
    // '' for a name no HTTP header has: the message is poison.
    return isToken(name) ? name : '';
  },
  { max: 1_024, keep: shortKey(128) },
);

/** A message's headers as name and values: nats.js's `MsgHdrs`, or a block read by `readHeaderBlock` (header-block.ts). */
export type HeaderEntries = Iterable<[string, string[]]>;

/**
 * One message's headers, read by name, and the problems found reading them. A class rather than
 * closures made per message: V8 keeps a closure's optimized code only while some closure of it is
 * alive, so helpers made per message were compiled again after every full collection (`get` 12
 * times in one drain, `--log-code`); a method's code lives as long as its class.
 */
class EnvelopeFields {
  readonly problems: string[] = [];
  /** The caller's headers in order, names without the prefix, values unescaped. */
  readonly caller: Array<[string, string]> = [];
  /** The first value of each envelope header, by its place in ENVELOPE_NAMES. */
  readonly #first: Array<string | undefined> = new Array<string | undefined>(ENVELOPE_NAMES.length).fill(undefined);

  constructor(headers: HeaderEntries | undefined) {
    if (!headers) return;
    // One pass over the headers (nats.js's case-insensitive lookup scans them all per name).
    if (headers instanceof Map) headers.forEach(this.#take, this);
    else for (const [key, values] of headers) this.#take(values, key);
  }

  /** Takes one header (a Map's forEach order: values, then name). */
  #take(values: string[], key: string): void {
    let place = PLACE.get(key);
    if (place === undefined) {
      const name = CALLER_NAMES.get(key);
      if (name !== null) {
        if (name === '') this.problems.push(`invalid caller header name in ${key}`);
        for (const value of values) {
          const unescaped = this.unescape(key, value);
          // What a gateway stores is what an HTTP request can carry; anything else would fail the call.
          if (!isFieldValue(unescaped)) this.problems.push(`invalid value of ${key}: not an HTTP field value`);
          this.caller.push([name, unescaped]);
        }
        return;
      }
      place = PLACE.get(key.toLowerCase());
      // Not one the envelope reads (JetStream's own, say).
      if (place === undefined) return;
    }
    if (values.length > 0 && this.#first[place] === undefined) this.#first[place] = values[0]!;
  }

  unescape(name: string, value: string): string {
    try {
      return unescapeValue(value);
    } catch {
      this.problems.push(`invalid escaped value in ${name}`);
      return value;
    }
  }

  get(name: EnvelopeHeaderName): string | undefined {
    return this.#first[PLACE.get(name)!];
  }

  /** The fields a caller's text travels in may be escaped (see ESCAPED_VALUE_PREFIX). */
  text(name: EnvelopeHeaderName): string | undefined {
    const value = this.get(name);
    return value === undefined ? undefined : this.unescape(name, value);
  }

  required(name: EnvelopeHeaderName): string {
    const value = this.get(name);
    if (value === undefined || value === '') this.problems.push(`missing header ${name}`);
    return value ?? '';
  }

  /** An optional ms header (unix ms, or a duration): absent is undefined, anything but a decimal integer a problem. */
  time(name: EnvelopeHeaderName): number | undefined {
    const text = this.get(name);
    const ms = text === undefined ? undefined : integer(text);
    if (ms !== undefined && !Number.isSafeInteger(ms)) this.problems.push(`invalid ${name}`);
    return ms;
  }
}

/** Decodes a stream message; throws {@link PoisonMessageError} listing every problem. */
export function decodeEnvelope(headers: HeaderEntries | undefined, data: Uint8Array): Invocation {
  const fields = new EnvelopeFields(headers);
  const { problems, caller } = fields;
  const version = fields.get(EnvelopeHeader.version);
  if (version !== ENVELOPE_VERSION) {
    problems.push(version === undefined ? `missing header ${EnvelopeHeader.version}` : `unsupported envelope version "${version}"`);
  }
  const callId = fields.required(EnvelopeHeader.callId);
  // A gateway makes or checks every call id; one that is no KV key could never be recorded.
  if (callId !== '' && !isCallId(callId)) problems.push(`invalid ${EnvelopeHeader.callId}: a call id is ${CALL_ID_RULE}`);
  const parentCallId = fields.text(EnvelopeHeader.parentCallId);
  // Sent to the function as X-Parent-Call-Id: a call id too, as a gateway only ever writes one.
  if (parentCallId !== undefined && !isCallId(parentCallId)) problems.push(`invalid ${EnvelopeHeader.parentCallId}: a call id is ${CALL_ID_RULE}`);
  const batchId = fields.get(EnvelopeHeader.batchId);
  if (batchId !== undefined && !BATCH_ID.test(batchId)) problems.push(`invalid ${EnvelopeHeader.batchId}`);
  const functionName = fields.required(EnvelopeHeader.functionName);
  const namespace = fields.required(EnvelopeHeader.namespace);
  const method = fields.required(EnvelopeHeader.method);
  if (method !== '' && !isToken(method)) problems.push(`invalid ${EnvelopeHeader.method}: not an HTTP method`);
  const enqueuedAtMs = integer(fields.required(EnvelopeHeader.enqueuedAt));
  if (!Number.isSafeInteger(enqueuedAtMs) || enqueuedAtMs < 0) problems.push(`invalid ${EnvelopeHeader.enqueuedAt}`);
  const expiresAtMs = fields.time(EnvelopeHeader.expiresAt);
  const notBeforeMs = fields.time(EnvelopeHeader.notBefore);
  const storeResult = fields.get(EnvelopeHeader.storeResult) === 'true';
  const timeoutMs = fields.time(EnvelopeHeader.timeout);
  if (timeoutMs !== undefined && timeoutMs < 1) problems.push(`invalid ${EnvelopeHeader.timeout}`);
  const callbackUrl = fields.get(EnvelopeHeader.callbackUrl);
  if (callbackUrl !== undefined && !PARSEABLE_URLS.get(callbackUrl)) problems.push(`invalid ${EnvelopeHeader.callbackUrl}`);
  const path = fields.text(EnvelopeHeader.path) ?? '';
  const query = fields.text(EnvelopeHeader.query) ?? '';
  if (UNSENDABLE_QUERY.test(query)) problems.push(`invalid ${EnvelopeHeader.query}: it holds a space, a control character, "#" or a character above U+00FF`);
  const bodyRef = bodyRefOf(fields.get(EnvelopeHeader.bodyRef), fields.get(EnvelopeHeader.bodySize), fields.get(EnvelopeHeader.bodySha256), problems);
  const traceparent = fields.text(EnvelopeHeader.traceparent);
  const tracestate = fields.text(EnvelopeHeader.tracestate);
  if (problems.length > 0) throw new PoisonMessageError(problems);

  // The optional fields added only when present, as the spreads of a literal would: six spreads,
  // most of an empty object, cost ~0.7 k instructions per message more than these assignments.
  const invocation: { -readonly [K in keyof Invocation]: Invocation[K] } = {
    callId: detached(callId),
    functionName,
    namespace,
    method,
    path,
    query,
    headers: caller,
    body: data,
    callbackUrl,
    enqueuedAtMs,
    expiresAtMs,
    traceparent,
    tracestate,
  };
  if (parentCallId !== undefined) invocation.parentCallId = parentCallId;
  if (batchId !== undefined) invocation.batchId = batchId;
  if (bodyRef !== undefined) invocation.bodyRef = bodyRef;
  if (notBeforeMs !== undefined) invocation.notBeforeMs = notBeforeMs;
  if (storeResult) invocation.storeResult = storeResult;
  if (timeoutMs !== undefined) invocation.timeoutMs = timeoutMs;
  return invocation;
}

/**
 * The same text, without keeping the string it was cut from alive. A header value read from a
 * message is a slice of the message's whole decoded header block (~300 bytes), and a call id
 * outlives its invocation as a key: the running sweep's list of deliveries (actors/queue.supervisor.ts)
 * kept ~3,700 header blocks alive during a drain, all promoted to the old generation. V8 copies the
 * concatenation flat before slicing it, so the result keeps only a copy of the id.
 */
function detached(text: string): string {
  return ` ${text}`.slice(1);
}

/** The claim check of a stored body: absent, or all three headers well-formed (else a problem). */
function bodyRefOf(name: string | undefined, size: string | undefined, sha256: string | undefined, problems: string[]): PayloadRef | undefined {
  if (name === undefined && size === undefined && sha256 === undefined) return undefined;
  const bytes = size === undefined ? Number.NaN : integer(size);
  if (name === undefined || !/^[A-Za-z0-9_.-]{1,128}$/.test(name)) problems.push(`invalid ${EnvelopeHeader.bodyRef}`);
  if (!Number.isSafeInteger(bytes) || bytes < 0) problems.push(`invalid ${EnvelopeHeader.bodySize}`);
  if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)) problems.push(`invalid ${EnvelopeHeader.bodySha256}`);
  return { name: name ?? '', size: bytes, sha256: sha256 ?? '' };
}

function setIfPresent(h: HeaderSink, name: string, value: string | undefined): void {
  if (value !== undefined && value !== '') h.set(name, escapeValue(value));
}

/** Decimal digits only: Number() would read "" as 0 (expired at once) and accept "0x10" or "1e3". */
function integer(text: string): number {
  return /^-?\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
}

/**
 * Whether a callback URL parses and is http or https (what a gateway takes), for the URLs seen
 * before: a worker sees the same few receivers on message after message, and `URL.canParse` was
 * 1 % of a draining worker's CPU (BENCHMARKS.md, "Callback URLs parsed once").
 */
const PARSEABLE_URLS = new BoundedMemo((url: string) => httpUrl(url) !== undefined, { max: 1_024, keep: shortKey(512) });
const utf8 = new TextEncoder();
/**
 * What a request target cannot carry raw (and so no gateway stored): a space, a control character,
 * `#`, or a character above U+00FF. A method or query a request cannot carry fails every call in
 * undici's checks, and after as many of those as an origin has connections its pool stops answering
 * that origin (undici 7.30.2), so such a message is poison.
 */
const UNSENDABLE_QUERY = /[\x00-\x20\x7f#]|[^\x00-\xff]/;

function percentEncoded(text: string): string {
  let out = '';
  for (const byte of utf8.encode(text)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

function escapeValue(value: string): string {
  // Trimmed values without CR/LF reach the other side unchanged (a lone surrogate is replaced by
  // U+FFFD either way, as UTF-8 cannot carry it).
  if (value === value.trim() && !/[\r\n]/.test(value) && !value.startsWith(ESCAPED_VALUE_PREFIX)) return value;
  // Only what NATS would alter is encoded (and "%", to keep decoding unambiguous): CR, LF, and the
  // first and last character when whitespace, which is enough to stop the trim. A value of 16 KiB
  // of U+00A0 must not become 96 KiB, over JetStream's 64 KiB limit for headers.
  let out = value.replace(/[%\r\n]/g, percentEncoded);
  if (/^\s/.test(out)) out = percentEncoded(out[0]!) + out.slice(1);
  if (/\s$/.test(out)) out = out.slice(0, -1) + percentEncoded(out[out.length - 1]!);
  return ESCAPED_VALUE_PREFIX + out;
}

/** Throws URIError on a malformed escape. */
function unescapeValue(value: string): string {
  return value.startsWith(ESCAPED_VALUE_PREFIX) ? decodeURIComponent(value.slice(ESCAPED_VALUE_PREFIX.length)) : value;
}
