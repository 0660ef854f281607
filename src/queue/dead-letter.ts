import { JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders, Match, type MsgHdrs } from '@nats-io/nats-core';
import type { DeadLetterReason } from '../../actors/invocation.types.js';
import { decodeMessage } from './decode.js';
import type { Invocation, StoredMessage } from './envelope.js';
import { DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECT_PREFIX } from './topology.js';

export type { DeadLetterReason };
import { describeError } from '../errors.js';

/*
 * Dead letters: invocations that will not succeed by waiting, kept with their original request so
 * an operator can inspect and replay them. One stream for all queues (topology.ts); the subject
 * names the queue (`asyncfn.dead-letters.<queue>`), so listing one queue's dead letters is a
 * subject filter.
 */

/** OpenFaaS's default function namespace, for a stored QueueRequest that names none. */
const DEFAULT_NAMESPACE = 'openfaas-fn';

export const DEAD_LETTER_REASONS: readonly DeadLetterReason[] = ['retriesExhausted', 'nonRetryable', 'expired', 'poison', 'callbackFailed'];

/** Headers added to the original message's headers. */
export const DeadLetterHeader = {
  reason: 'Asyncfn-Dlq-Reason',
  queue: 'Asyncfn-Dlq-Queue',
  attempts: 'Asyncfn-Dlq-Attempts',
  status: 'Asyncfn-Dlq-Status',
  error: 'Asyncfn-Dlq-Error',
  at: 'Asyncfn-Dlq-At',
  /** Set when the original body did not fit and was not stored: its size in bytes. Such a letter is not replayed. */
  bodyDropped: 'Asyncfn-Dlq-Body-Dropped',
} as const;

/** What is known about the end of an invocation when it is dead-lettered. */
export interface DeadLetterMeta {
  readonly reason: DeadLetterReason;
  /** The queue (stream) the invocation came from. */
  readonly queue: string;
  /** Attempts made (0 when never run). */
  readonly attempts: number;
  /** Last function status, when the function answered. */
  readonly status?: number | undefined;
  /** Last error, one line. */
  readonly error?: string | undefined;
  /** Unix ms. */
  readonly atMs: number;
}

export interface EncodedDeadLetter {
  readonly subject: string;
  readonly headers: MsgHdrs;
  readonly data: Uint8Array;
}

/** A message as it came off a stream, envelope or not. */
export type RawMessage = StoredMessage;

/** The original message (valid envelope or not) plus the dead-letter headers. */
export function encodeDeadLetter(original: RawMessage, meta: DeadLetterMeta): EncodedDeadLetter {
  const h = natsHeaders();
  if (original.headers) {
    for (const [key, values] of original.headers) {
      // Never copy the original's Nats-* headers: Nats-Msg-Id would make JetStream drop the dead letter as a duplicate.
      if (key.toLowerCase().startsWith('nats-')) continue;
      for (const value of values) h.append(key, value);
    }
  }
  h.set(DeadLetterHeader.reason, meta.reason);
  h.set(DeadLetterHeader.queue, meta.queue);
  h.set(DeadLetterHeader.attempts, String(meta.attempts));
  h.set(DeadLetterHeader.at, String(meta.atMs));
  if (meta.status !== undefined) h.set(DeadLetterHeader.status, String(meta.status));
  if (meta.error) h.set(DeadLetterHeader.error, oneLine(meta.error));
  return { subject: DEAD_LETTER_SUBJECT_PREFIX + meta.queue, headers: h, data: original.data };
}

/** A dead letter as read back from the stream. */
export interface DeadLetter extends DeadLetterMeta {
  /** Sequence in the dead-letter stream: the id for show, replay and purge. */
  readonly seq: number;
  /** The original invocation, unless the message was poison. */
  readonly invocation?: Invocation | undefined;
  /** Why the original could not be decoded (poison only). */
  readonly decodeError?: string | undefined;
}

export function decodeDeadLetter(msg: { seq: number; header?: MsgHdrs | undefined; data: Uint8Array }): DeadLetter {
  const get = (name: string): string | undefined => msg.header?.values(name, Match.IgnoreCase)[0];
  const atMs = Number(get(DeadLetterHeader.at) ?? 0);
  let invocation: Invocation | undefined;
  let decodeError: string | undefined;
  try {
    // A QueueRequest's dead letter carries the call id, namespace and enqueue time it ran with
    // (openfaas-request.ts, storedQueueRequest); these only stand in for what it lacks.
    invocation = decodeMessage(msg.header, msg.data, () => ({
      defaultNamespace: DEFAULT_NAMESPACE,
      storedAtMs: atMs,
      messageKey: `${DEAD_LETTER_STREAM}/${msg.seq}`,
      maxEventAgeMs: 0,
    }));
  } catch (err) {
    decodeError = describeError(err);
  }
  const bodyDropped = get(DeadLetterHeader.bodyDropped);
  if (bodyDropped !== undefined) {
    // Replayed, it would run without its body.
    invocation = undefined;
    decodeError = `its body (${bodyDropped} bytes) was too large to store with the dead letter: it cannot be replayed`;
  }
  const status = get(DeadLetterHeader.status);
  return {
    seq: msg.seq,
    reason: (get(DeadLetterHeader.reason) ?? 'poison') as DeadLetterReason,
    queue: get(DeadLetterHeader.queue) ?? '',
    attempts: Number(get(DeadLetterHeader.attempts) ?? 0),
    status: status === undefined ? undefined : Number(status),
    error: get(DeadLetterHeader.error),
    atMs,
    invocation,
    decodeError,
  };
}

/** JetStream refuses messages whose headers exceed 64 KiB (API error 10097). */
const HEADERS_TOO_LARGE = 10097;

/**
 * Publishes a dead letter and waits for JetStream's PubAck. A message that does not fit with the
 * dead-letter headers added (only a foreign publisher writes one that nearly fills JetStream's
 * limits: the gateway keeps room for them) would be redelivered forever: it is stored with less,
 * each time the server or nats.js refuses it as too large, and the error says what was dropped.
 * Headers over JetStream's 64 KiB, or a poison message: the original headers go first. An
 * invocation over `max_payload`: its body goes first (the envelope says which invocation it was;
 * such a letter is not replayed), then the original headers.
 */
export async function publishDeadLetter(js: JetStreamClient, letter: EncodedDeadLetter, timeoutMs = 5_000): Promise<number> {
  let candidate = letter;
  for (;;) {
    try {
      const ack = await js.publish(candidate.subject, candidate.data, { headers: candidate.headers, timeout: timeoutMs });
      return ack.seq;
    } catch (err) {
      const smaller = tooLargeToStore(err) ? shrunk(candidate, err) : undefined;
      if (smaller === undefined) throw err;
      candidate = smaller;
    }
  }
}

/** The letter with one part less, or undefined when nothing is left to drop. */
function shrunk(letter: EncodedDeadLetter, err: unknown): EncodedDeadLetter | undefined {
  const originals = hasOriginalHeaders(letter.headers);
  // A poison message's headers are no envelope: its body is what is left to look at.
  const headersFirst = (err instanceof JetStreamApiError && err.code === HEADERS_TOO_LARGE) || letter.headers.get(DeadLetterHeader.reason) === 'poison';
  if (originals && (headersFirst || letter.data.length === 0)) return { ...letter, headers: withoutOriginalHeaders(letter.headers) };
  if (letter.data.length > 0) return { ...letter, headers: withBodyDropped(letter.headers, letter.data.length), data: new Uint8Array(0) };
  return undefined;
}

/** Whether a publish failed because the message is too large for NATS (max_payload) or JetStream (headers over 64 KiB). */
export function tooLargeToStore(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === HEADERS_TOO_LARGE;
  // nats.js checks max_payload before sending.
  return err instanceof Error && err.message.includes('max_payload size exceeded');
}

const OWN_HEADERS = new Set<string>(Object.values(DeadLetterHeader).map((name) => name.toLowerCase()));

function hasOriginalHeaders(headers: MsgHdrs): boolean {
  for (const [key] of headers) if (!OWN_HEADERS.has(key.toLowerCase())) return true;
  return false;
}

function withoutOriginalHeaders(headers: MsgHdrs): MsgHdrs {
  const h = natsHeaders();
  let droppedBytes = 0;
  for (const [key, values] of headers) {
    if (OWN_HEADERS.has(key.toLowerCase())) for (const value of values) h.append(key, value);
    else for (const value of values) droppedBytes += key.length + value.length + 4;
  }
  return withError(h, `original headers dropped (${droppedBytes} bytes): too large to store`);
}

function withBodyDropped(headers: MsgHdrs, bytes: number): MsgHdrs {
  const h = natsHeaders();
  for (const [key, values] of headers) for (const value of values) h.append(key, value);
  h.set(DeadLetterHeader.bodyDropped, String(bytes));
  return withError(h, `body dropped (${bytes} bytes): too large to store`);
}

/** `headers` with `note` added to the dead letter's error. */
function withError(headers: MsgHdrs, note: string): MsgHdrs {
  const error = headers.get(DeadLetterHeader.error);
  headers.set(DeadLetterHeader.error, oneLine(`${error ? `${error}; ` : ''}${note}`));
  return headers;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, '; ').slice(0, 1000);
}
