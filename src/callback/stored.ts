import type { JetStreamClient } from '@nats-io/jetstream';
import { Match, type MsgHdrs } from '@nats-io/nats-core';
import type { CallbackHandOff, CallbackRequest, PayloadRef } from '../../actors/invocation.types.js';
import { describeError } from '../errors.js';
import { tooLargeToStore } from '../queue/dead-letter.js';
import { decodeEnvelope, encodeEnvelope } from '../queue/envelope.js';
import { PayloadCorruptError, type PayloadStore } from '../queue/payload-store.js';
import { CALLBACK_SUBJECT_PREFIX } from '../queue/topology.js';

/*
 * A stored callback: the message that carries a result whose direct callback failed into the
 * callback stream (its wire format, and the hand-off that publishes it). The gateway hands off too
 * (a batch's callback), so this lives apart from the retrier that delivers them (durable.ts).
 */

/** The function's result rides in these headers, beside the invocation's envelope headers. */
const ResultHeader = {
  status: 'Asyncfn-Result-Status',
  contentType: 'Asyncfn-Result-Content-Type',
  contentEncoding: 'Asyncfn-Result-Content-Encoding',
  startedAt: 'Asyncfn-Result-Started-At',
  durationMs: 'Asyncfn-Result-Duration-Ms',
  attempt: 'Asyncfn-Result-Attempt',
  maxAttempts: 'Asyncfn-Result-Max-Attempts',
  queue: 'Asyncfn-Result-Queue',
  error: 'Asyncfn-Result-Error',
  /** A result too large for the message: its object in the payload bucket (then the message has no body). */
  bodyRef: 'Asyncfn-Result-Body-Ref',
  bodySize: 'Asyncfn-Result-Body-Size',
  bodySha256: 'Asyncfn-Result-Body-Sha256',
} as const;

/**
 * A callback that cannot be stored for durable delivery, now or ever: too large for a message
 * even with its result in the payload bucket (its headers), or too large with no bucket to put
 * the result in. `permanent` tells the invocation machine (actors/callback.policy.ts) to
 * dead-letter it instead of leaving the invocation to run again.
 */
export class CallbackNotStorableError extends Error {
  override readonly name = 'CallbackNotStorableError';
  readonly permanent = true;
}

/**
 * The receiver's status on the worker's direct attempt. The retrier decides on it before posting
 * again (a 404 is not asked twice); a replay drops it (src/dead-letters/replay.ts), so a replayed callback
 * is always posted.
 */
export const DIRECT_STATUS_HEADER = 'Asyncfn-Callback-Direct-Status';

/**
 * A pending callback: the invocation's envelope (without its request body, its claim check or its
 * headers) and the result, in the body or, with `resultRef`, in the payload bucket.
 */
export function encodeCallback(
  queue: string,
  req: CallbackRequest,
  error: string,
  directStatus?: number,
  resultRef?: PayloadRef,
): { subject: string; headers: MsgHdrs; data: Uint8Array } {
  const { headers } = encodeEnvelope({ ...req.invocation, headers: [], body: req.outcome.body, bodyRef: undefined });
  headers.set(ResultHeader.status, String(req.outcome.status));
  if (req.outcome.contentType) headers.set(ResultHeader.contentType, req.outcome.contentType);
  if (req.outcome.contentEncoding) headers.set(ResultHeader.contentEncoding, req.outcome.contentEncoding);
  headers.set(ResultHeader.startedAt, String(req.outcome.startedAtMs));
  headers.set(ResultHeader.durationMs, String(req.outcome.durationMs));
  headers.set(ResultHeader.attempt, String(req.attempt));
  headers.set(ResultHeader.maxAttempts, String(req.maxAttempts));
  headers.set(ResultHeader.queue, queue);
  headers.set(ResultHeader.error, error.replace(/[\r\n]+/g, ' ').slice(0, 500));
  if (directStatus !== undefined) headers.set(DIRECT_STATUS_HEADER, String(directStatus));
  if (resultRef !== undefined) {
    headers.set(ResultHeader.bodyRef, resultRef.name);
    headers.set(ResultHeader.bodySize, String(resultRef.size));
    headers.set(ResultHeader.bodySha256, resultRef.sha256);
  }
  return { subject: CALLBACK_SUBJECT_PREFIX + queue, headers, data: resultRef === undefined ? req.outcome.body : new Uint8Array(0) };
}

/** A stored callback as read back; with `resultRef`, `request.outcome.body` is empty until the result is read (readStoredResult). */
export interface StoredCallback {
  readonly queue: string;
  readonly request: CallbackRequest;
  readonly directStatus: number | undefined;
  readonly resultRef?: PayloadRef | undefined;
}

export function decodeCallback(headers: MsgHdrs | undefined, data: Uint8Array): StoredCallback {
  const invocation = decodeEnvelope(headers, data);
  const get = (name: string): string => headers?.values(name, Match.IgnoreCase)[0] ?? '';
  const direct = Number(get(DIRECT_STATUS_HEADER));
  return {
    queue: get(ResultHeader.queue),
    resultRef: resultRefOf(get(ResultHeader.bodyRef), get(ResultHeader.bodySize), get(ResultHeader.bodySha256)),
    directStatus: Number.isInteger(direct) && direct >= 100 && direct <= 599 ? direct : undefined,
    request: {
      invocation: { ...invocation, body: new Uint8Array(0) },
      outcome: {
        status: Number(get(ResultHeader.status)),
        contentType: get(ResultHeader.contentType) || undefined,
        contentEncoding: get(ResultHeader.contentEncoding) || undefined,
        body: data,
        startedAtMs: Number(get(ResultHeader.startedAt)),
        durationMs: Number(get(ResultHeader.durationMs)),
      },
      attempt: Number(get(ResultHeader.attempt)) || 1,
      maxAttempts: Number(get(ResultHeader.maxAttempts)) || 1,
    },
  };
}

function resultRefOf(name: string, size: string, sha256: string): PayloadRef | undefined {
  if (name === '') return undefined;
  const bytes = /^\d{1,16}$/.test(size) ? Number(size) : Number.NaN;
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name) || !Number.isSafeInteger(bytes) || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new Error(`invalid ${ResultHeader.bodyRef}, ${ResultHeader.bodySize} or ${ResultHeader.bodySha256}`);
  }
  return { name, size: bytes, sha256 };
}

/** A stored result that is gone from the payload bucket (its age limit) or damaged: no retry brings it back. */
export class StoredResultLostError extends Error {
  override readonly name = 'StoredResultLostError';
}

/** The result a stored callback keeps in the payload bucket, whole (it is posted as one body). */
export async function readStoredResult(payloads: PayloadStore, ref: PayloadRef): Promise<Uint8Array> {
  const stored = await payloads.get(ref.name);
  if (stored === undefined) throw new StoredResultLostError(`the result (object ${ref.name}) is no longer in the payload bucket`);
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of stored.chunks) chunks.push(chunk);
  } catch (err) {
    if (err instanceof PayloadCorruptError) throw new StoredResultLostError(err.message, { cause: err });
    throw err;
  }
  return Buffer.concat(chunks);
}

export interface HandOffOptions {
  /** JetStream's deduplication id, when one callback may be handed off twice. */
  readonly msgId?: string | undefined;
  /** Where a result too large for a message goes; without it such a callback cannot be handed off. */
  readonly payloads?: PayloadStore | undefined;
}

/**
 * Stores a callback whose direct attempt failed in the callback stream; resolves on PubAck. The
 * `attempt` of `req` is the function's (X-Retry), kept as is for every later attempt. A result too
 * large for one message (max_payload) goes to the payload bucket, and the message carries its
 * claim check (as a large request body does); a callback that does not fit even so rejects with
 * {@link CallbackNotStorableError}. Other failures (NATS unavailable) reject as they came.
 */
export async function handOffCallback(js: JetStreamClient, queue: string, req: CallbackHandOff, opts: HandOffOptions = {}): Promise<void> {
  const publish = async (resultRef?: PayloadRef): Promise<void> => {
    const { subject, headers, data } = encodeCallback(queue, req, req.error, req.status, resultRef);
    // A batch's callback is handed off by whichever process sees the batch done first: its id makes
    // a second hand-off within the stream's duplicate window a duplicate (src/callback/batch-done.ts).
    if (opts.msgId !== undefined) headers.set('Nats-Msg-Id', opts.msgId);
    await js.publish(subject, data, { headers, timeout: 5_000 });
  };
  try {
    // nats.js refuses a message over max_payload before sending it: a small result costs nothing more.
    await publish();
    return;
  } catch (err) {
    if (!tooLargeToStore(err)) throw err;
    if (opts.payloads === undefined || req.outcome.body.length === 0)
      throw new CallbackNotStorableError(`the callback is too large to store: ${describeError(err)}`, { cause: err });
  }
  const ref = await opts.payloads.put([req.outcome.body]);
  try {
    await publish(ref);
  } catch (err) {
    // Best effort: the bucket's age limit removes an object left behind.
    await opts.payloads.delete(ref.name).catch(() => false);
    if (tooLargeToStore(err))
      throw new CallbackNotStorableError(`the callback is too large to store, even with its result in the payload bucket: ${describeError(err)}`, { cause: err });
    throw err;
  }
}
