import { headers as natsHeaders, Match, type MsgHdrs } from '@nats-io/nats-core';

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
  functionName: 'Asyncfn-Function',
  namespace: 'Asyncfn-Namespace',
  method: 'Asyncfn-Method',
  path: 'Asyncfn-Path',
  query: 'Asyncfn-Query',
  callbackUrl: 'Asyncfn-Callback-Url',
  enqueuedAt: 'Asyncfn-Enqueued-At',
  expiresAt: 'Asyncfn-Expires-At',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

/** Namespacing keeps a caller's headers from colliding with `Nats-*` or our own headers. */
export const CALLER_HEADER_PREFIX = 'Asyncfn-H-';

/** One asynchronous invocation as the gateway accepted it. */
export interface Invocation {
  /** Caller's X-Call-Id (OpenFaaS keeps it) or a generated UUID. */
  readonly callId: string;
  readonly functionName: string;
  readonly namespace: string;
  /** HTTP method the function is called with (OpenFaaS async invocations are POST). */
  readonly method: string;
  /** Path suffix after the function name, "" or "/a/b", percent-encoded as received. */
  readonly path: string;
  /** Raw query string without "?", "" when absent. */
  readonly query: string;
  /** Caller's headers, names lower-cased, one pair per value (repeated headers repeat). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Uint8Array;
  readonly callbackUrl?: string | undefined;
  /** Unix time in milliseconds when the gateway accepted the request. */
  readonly enqueuedAtMs: number;
  /** Unix ms after which the invocation is dead-lettered unrun (max event age); absent = never. */
  readonly expiresAtMs?: number | undefined;
  /** W3C trace context of the producer span, carried across the queue. */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

export interface EncodedEnvelope {
  readonly headers: MsgHdrs;
  readonly data: Uint8Array;
}

export function encodeEnvelope(invocation: Invocation): EncodedEnvelope {
  const h = natsHeaders();
  h.set(EnvelopeHeader.version, ENVELOPE_VERSION);
  h.set(EnvelopeHeader.callId, invocation.callId);
  h.set(EnvelopeHeader.functionName, invocation.functionName);
  h.set(EnvelopeHeader.namespace, invocation.namespace);
  h.set(EnvelopeHeader.method, invocation.method);
  h.set(EnvelopeHeader.enqueuedAt, String(invocation.enqueuedAtMs));
  if (invocation.expiresAtMs !== undefined) h.set(EnvelopeHeader.expiresAt, String(invocation.expiresAtMs));
  setIfPresent(h, EnvelopeHeader.path, invocation.path);
  setIfPresent(h, EnvelopeHeader.query, invocation.query);
  setIfPresent(h, EnvelopeHeader.callbackUrl, invocation.callbackUrl);
  setIfPresent(h, EnvelopeHeader.traceparent, invocation.traceparent);
  setIfPresent(h, EnvelopeHeader.tracestate, invocation.tracestate);
  for (const [name, value] of invocation.headers) h.append(CALLER_HEADER_PREFIX + name, value);
  return { headers: h, data: invocation.body };
}

/** A message on the stream that is not a valid envelope; it can never succeed, so it must not be retried. */
export class PoisonMessageError extends Error {
  readonly code = 'ASYNCFN_ERR_POISON_MESSAGE';
  constructor(readonly reasons: readonly string[]) {
    super(`undecodable message: ${reasons.join('; ')}`);
    this.name = 'PoisonMessageError';
  }
}

/** Decodes a stream message; throws {@link PoisonMessageError} listing every problem. */
export function decodeEnvelope(headers: MsgHdrs | undefined, data: Uint8Array): Invocation {
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const values = headers?.values(name, Match.IgnoreCase) ?? [];
    return values.length > 0 ? values[0] : undefined;
  };
  const required = (name: string): string => {
    const value = get(name);
    if (value === undefined || value === '') problems.push(`missing header ${name}`);
    return value ?? '';
  };

  const version = get(EnvelopeHeader.version);
  if (version !== ENVELOPE_VERSION) {
    problems.push(version === undefined ? `missing header ${EnvelopeHeader.version}` : `unsupported envelope version "${version}"`);
  }
  const callId = required(EnvelopeHeader.callId);
  const functionName = required(EnvelopeHeader.functionName);
  const namespace = required(EnvelopeHeader.namespace);
  const method = required(EnvelopeHeader.method);
  const enqueuedAtMs = Number(required(EnvelopeHeader.enqueuedAt));
  if (!Number.isSafeInteger(enqueuedAtMs) || enqueuedAtMs < 0) problems.push(`invalid ${EnvelopeHeader.enqueuedAt}`);
  const expiresAt = get(EnvelopeHeader.expiresAt);
  const expiresAtMs = expiresAt === undefined ? undefined : Number(expiresAt);
  if (expiresAtMs !== undefined && !Number.isSafeInteger(expiresAtMs)) problems.push(`invalid ${EnvelopeHeader.expiresAt}`);
  const callbackUrl = get(EnvelopeHeader.callbackUrl);
  if (callbackUrl !== undefined && !URL.canParse(callbackUrl)) problems.push(`invalid ${EnvelopeHeader.callbackUrl}`);
  if (problems.length > 0) throw new PoisonMessageError(problems);

  return {
    callId,
    functionName,
    namespace,
    method,
    path: get(EnvelopeHeader.path) ?? '',
    query: get(EnvelopeHeader.query) ?? '',
    headers: callerHeaders(headers),
    body: data,
    callbackUrl,
    enqueuedAtMs,
    expiresAtMs,
    traceparent: get(EnvelopeHeader.traceparent),
    tracestate: get(EnvelopeHeader.tracestate),
  };
}

function callerHeaders(headers: MsgHdrs | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!headers) return out;
  const prefix = CALLER_HEADER_PREFIX.toLowerCase();
  for (const [key, values] of headers) {
    if (!key.toLowerCase().startsWith(prefix)) continue;
    const name = key.slice(prefix.length).toLowerCase();
    for (const value of values) out.push([name, value]);
  }
  return out;
}

function setIfPresent(h: MsgHdrs, name: string, value: string | undefined): void {
  if (value !== undefined && value !== '') h.set(name, value);
}
