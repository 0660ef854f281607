import { createHash } from 'node:crypto';
import { headers as natsHeaders, Match, type MsgHdrs } from '@nats-io/nats-core';
import { parseFunctionRef } from '../functions/resolver.js';
import { endToEndHeaders, type IncomingHeaders } from '../http/headers.js';
import { isCallId } from './call-id.js';
import { isFieldValue } from '../http/fields.js';
import { httpUrl } from '../http/http-url.js';
import { EnvelopeHeader, PoisonMessageError, type Invocation, type StoredMessage } from './envelope.js';

/**
 * The OpenFaaS gateway's queue message: its `QueueRequest` (github.com/openfaas/faas-provider,
 * types/queue.go) as Go's encoding/json writes it, the whole message body. Field names are the Go
 * ones; `Body` is base64 (standard alphabet, padded), `Header` an object of string arrays keyed in
 * Go's canonical case, `CallbackUrl` a net/url.URL struct (not a string). `Host`, `QueueName`,
 * `Annotations`, `Labels` and `Environment` are not read: the worker runs a message on the queue it
 * pulled it from, with the function's annotations from its own registry, as it does its own.
 */

/** What a QueueRequest does not say, taken from the JetStream message it came in and the config. */
export interface QueueRequestContext {
  /** Namespace of a `Function` without one (`function_namespace`). */
  readonly defaultNamespace: string;
  /** Unix ms when JetStream stored the message: the enqueue time unless the message says otherwise. */
  readonly storedAtMs: number;
  /**
   * Names the stored message for good, e.g. "<stream>/<sequence>/<stored ns>": a call id derived
   * from it is the same on every redelivery.
   */
  readonly messageKey: string;
  /** `max_event_age`, ms: the invocation expires this long after its enqueue time; 0 = never. */
  readonly maxEventAgeMs: number;
  /** Told when the caller's `X-Call-Id` is no call id asyncfn can keep, and which one it runs under instead. */
  readonly onCallIdReplaced?: (given: string, used: string) => void;
}

/**
 * asyncfn's NATS headers a QueueRequest message may carry: asyncfn adds them when it stores one
 * (a dead letter keeps the original body and headers plus these), so a replay runs under the same
 * call id and namespace. A replay also sets `Asyncfn-Enqueued-At` to its own time.
 */
const STORED_HEADERS = [EnvelopeHeader.callId, EnvelopeHeader.namespace, EnvelopeHeader.enqueuedAt] as const;

const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** What may not stand raw in a query string appended to a URL: it would end or break it. */
const BAD_QUERY = /[\x00-\x20\x7f#]/;
// asyncfn's and JetStream's namespaces, and X-Parent-Call-Id: asyncfn's gateway never forwards them either.
const DROPPED_HEADER = /^(?:asyncfn-|nats-|x-parent-call-id$)/;
const JSON_WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const OPEN_BRACE = 0x7b;

/** True when the body starts (after JSON whitespace) with "{": it can only be a QueueRequest. */
export function looksLikeJsonObject(data: Uint8Array): boolean {
  for (const byte of data) {
    if (!JSON_WHITESPACE.has(byte)) return byte === OPEN_BRACE;
  }
  return false;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes an OpenFaaS QueueRequest into the invocation asyncfn runs; throws
 * {@link PoisonMessageError} listing every problem. The result keeps the message as published in
 * `original`, so a dead letter stores it unchanged.
 *
 * - call id: `Header["X-Call-Id"][0]` (the OpenFaaS gateway sets it), else asyncfn's stored
 *   `Asyncfn-Call-Id`, else a UUID derived from `messageKey`; a caller's X-Call-Id asyncfn cannot
 *   keep (see call-id.ts) is replaced by the stored or derived one, and `onCallIdReplaced` told;
 * - callback: `Header["X-Callback-Url"][0]`, else `CallbackUrl` put back together (its `User`
 *   comes without the password, so the header is preferred);
 * - `Path` is Go's decoded `URL.Path`: it is percent-encoded again as Go's `URL.EscapedPath` does;
 * - no trace context: each invocation starts a new trace.
 */
export function decodeQueueRequest(headers: MsgHdrs | undefined, data: Uint8Array, ctx: QueueRequestContext): Invocation {
  const problems: string[] = [];
  const request = parseObject(data, problems);
  if (request === undefined) throw new PoisonMessageError(problems);
  const field = (name: string): string | undefined => {
    const value = request[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') {
      problems.push(`QueueRequest ${name} is not a string`);
      return undefined;
    }
    return value;
  };
  const stored = (name: string): string | undefined => {
    const value = headers?.get(name, Match.IgnoreCase);
    return value === undefined || value === '' ? undefined : value;
  };

  const callerHeaders = headerPairs(request['Header'], problems);
  const first = (name: string): string | undefined => callerHeaders.find(([n]) => n === name)?.[1];

  const fn = field('Function');
  let functionName = '';
  let namespace = '';
  if (fn === undefined || fn === '') problems.push('QueueRequest Function is missing');
  else {
    try {
      const ref = parseFunctionRef(fn, stored(EnvelopeHeader.namespace) ?? ctx.defaultNamespace);
      functionName = ref.name;
      namespace = ref.namespace;
    } catch {
      problems.push(`QueueRequest Function ${JSON.stringify(fn.slice(0, 80))} is not "name" or "name.namespace" (DNS-1123 labels)`);
    }
  }

  const method = field('Method') || 'POST';
  if (!HTTP_TOKEN.test(method)) problems.push('QueueRequest Method is not an HTTP method');

  const rawPath = field('Path') ?? '';
  if (rawPath !== '' && !rawPath.startsWith('/')) problems.push('QueueRequest Path does not start with "/"');
  const path = escapePath(rawPath);

  // OpenFaaS's queue-worker trims a leading "?" too.
  const query = (field('QueryString') ?? '').replace(/^\?+/, '');
  if (BAD_QUERY.test(query)) problems.push('QueueRequest QueryString holds a space, control character or "#"');

  const body = decodeBody(request['Body'], problems);
  const callbackUrl = callbackUrlOf(first('x-callback-url'), request['CallbackUrl'], problems);

  // The OpenFaaS gateway keeps whatever X-Call-Id its caller sent and has answered 202 with it:
  // one that cannot be a call id (a KV key) is replaced, not refused, so the work still runs.
  const givenCallId = nonEmpty(first('x-call-id'));
  const storedCallId = stored(EnvelopeHeader.callId);
  let callId = givenCallId ?? storedCallId ?? derivedCallId(ctx.messageKey);
  if (!isCallId(callId)) {
    callId = storedCallId !== undefined && isCallId(storedCallId) ? storedCallId : derivedCallId(ctx.messageKey);
    ctx.onCallIdReplaced?.(givenCallId ?? storedCallId ?? '', callId);
  }

  const storedEnqueuedAt = stored(EnvelopeHeader.enqueuedAt);
  const enqueuedAtMs = storedEnqueuedAt !== undefined && /^\d{1,16}$/.test(storedEnqueuedAt) ? Number(storedEnqueuedAt) : ctx.storedAtMs;

  if (problems.length > 0) throw new PoisonMessageError(problems);
  return {
    callId,
    functionName,
    namespace,
    method,
    path,
    query,
    headers: callerHeaders,
    body,
    callbackUrl,
    enqueuedAtMs,
    expiresAtMs: ctx.maxEventAgeMs > 0 ? enqueuedAtMs + ctx.maxEventAgeMs : undefined,
    traceparent: undefined,
    tracestate: undefined,
    original: { headers, data },
  };
}

/**
 * What a dead letter keeps of an invocation decoded from a QueueRequest: the message as published
 * (body byte for byte, headers as they were) plus the call id, namespace and enqueue time it ran
 * with, so `asyncfn dlq show` tells them and a replay runs under the same call id.
 */
export function storedQueueRequest(invocation: Invocation, original: NonNullable<Invocation['original']>): StoredMessage {
  const h = natsHeaders();
  const replaced = new Set<string>(STORED_HEADERS.map((name) => name.toLowerCase()));
  // Set by decodeQueueRequest above, always with the message's own NATS headers.
  const headers = original.headers as StoredMessage['headers'];
  if (headers) {
    for (const [key, values] of headers) {
      if (replaced.has(key.toLowerCase())) continue;
      for (const value of values) h.append(key, value);
    }
  }
  h.set(EnvelopeHeader.callId, invocation.callId);
  h.set(EnvelopeHeader.namespace, invocation.namespace);
  h.set(EnvelopeHeader.enqueuedAt, String(invocation.enqueuedAtMs));
  return { headers: h, data: original.data };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

function parseObject(data: Uint8Array, problems: string[]): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(data));
  } catch (err) {
    problems.push(
      `not an OpenFaaS QueueRequest: ${err instanceof TypeError ? 'the body is not UTF-8' : `invalid JSON (${String((err as Error).message).slice(0, 120)})`}`,
    );
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push('not an OpenFaaS QueueRequest: the body is not a JSON object');
    return undefined;
  }
  return value as Record<string, unknown>;
}

/**
 * `Header` (Go's http.Header: name → values) as the invocation's pairs: names lower-cased,
 * repeated values kept in order, hop-by-hop headers dropped as asyncfn's gateway drops them.
 */
function headerPairs(header: unknown, problems: string[]): Array<[string, string]> {
  if (header === undefined || header === null) return [];
  if (typeof header !== 'object' || Array.isArray(header)) {
    problems.push('QueueRequest Header is not an object');
    return [];
  }
  const record: IncomingHeaders = Object.create(null) as IncomingHeaders;
  for (const [name, values] of Object.entries(header as Record<string, unknown>)) {
    // Go writes a nil slice as null.
    if (values === null) continue;
    if (!HTTP_TOKEN.test(name)) {
      problems.push(`QueueRequest Header name ${JSON.stringify(name.slice(0, 80))} is not an HTTP token`);
      continue;
    }
    if (!Array.isArray(values) || !values.every((v) => typeof v === 'string')) {
      problems.push(`QueueRequest Header ${name} is not an array of strings`);
      continue;
    }
    // What no HTTP request carries (CR, LF, NUL, another control character, a character above
    // U+00FF; Go's server refuses them too) could never reach the function: undici refuses it.
    if (!values.every(isFieldValue)) {
      problems.push(`QueueRequest Header ${name} has a value no HTTP request can carry (a control character, or one above U+00FF)`);
      continue;
    }
    const lower = name.toLowerCase();
    const existing = record[lower];
    record[lower] = existing === undefined ? [...values] : [...existing, ...values];
  }
  return endToEndHeaders(record).filter(([name]) => !DROPPED_HEADER.test(name));
}

function decodeBody(body: unknown, problems: string[]): Uint8Array {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof body !== 'string' || !BASE64.test(body)) {
    problems.push('QueueRequest Body is not padded standard base64');
    return new Uint8Array(0);
  }
  const bytes = Buffer.from(body, 'base64');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** The callback URL, normalised as asyncfn's gateway stores it; undefined when there is none. */
function callbackUrlOf(header: string | undefined, struct: unknown, problems: string[]): string | undefined {
  let text = header;
  if (text === undefined || text === '') {
    if (struct === undefined || struct === null) return undefined;
    text = goUrlString(struct, problems);
    if (text === undefined) return undefined;
  }
  const url = httpUrl(text);
  if (!url) {
    problems.push('the callback URL is not an absolute http(s) URL');
    return undefined;
  }
  return url.toString();
}

/**
 * A net/url.URL struct as Go's `URL.String()` writes it, without the fragment (never sent to a
 * server). `User` is ignored: Go writes its unexported fields as `{}`, so the name and password
 * are lost on the way.
 */
function goUrlString(struct: unknown, problems: string[]): string | undefined {
  if (typeof struct !== 'object' || Array.isArray(struct) || struct === null) {
    problems.push('QueueRequest CallbackUrl is not a URL object');
    return undefined;
  }
  const u = struct as Record<string, unknown>;
  const text = (name: string): string => (typeof u[name] === 'string' ? u[name] : '');
  if (text('Opaque') !== '') {
    problems.push('QueueRequest CallbackUrl is an opaque URL, not an http(s) URL');
    return undefined;
  }
  const raw = text('RawPath');
  let path = raw !== '' ? raw : escapePath(text('Path'));
  if (path !== '' && !path.startsWith('/')) path = `/${path}`;
  const rawQuery = text('RawQuery');
  const query = rawQuery !== '' || u['ForceQuery'] === true ? `?${rawQuery}` : '';
  return `${text('Scheme')}://${text('Host')}${path}${query}`;
}

const encoder = new TextEncoder();
/** Kept as is in a path by Go's URL.EscapedPath: unreserved characters and `$&+,/:;=@`. */
const PATH_SAFE = /[A-Za-z0-9\-_.~$&+,/:;=@]/;

/** Percent-encodes a decoded URL path the way Go's `URL.EscapedPath` does (UTF-8, upper-case hex). */
export function escapePath(path: string): string {
  let out = '';
  for (const char of path) {
    if (PATH_SAFE.test(char)) out += char;
    else for (const byte of encoder.encode(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * A UUID (version 8: application-defined) from the SHA-256 of the message's key: the same message
 * gets the same call id on every delivery, on any worker.
 */
export function derivedCallId(messageKey: string): string {
  const hex = createHash('sha256').update(messageKey).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
