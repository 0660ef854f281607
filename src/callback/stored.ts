import type { JetStreamClient } from '@nats-io/jetstream';
import { Match, type MsgHdrs } from '@nats-io/nats-core';
import type { CallbackHandOff, CallbackRequest } from '../../actors/invocation.types.js';
import { decodeEnvelope, encodeEnvelope } from '../queue/envelope.js';
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
} as const;

/**
 * The receiver's status on the worker's direct attempt. The retrier decides on it before posting
 * again (a 404 is not asked twice); a replay drops it (src/dead-letters/replay.ts), so a replayed callback
 * is always posted.
 */
export const DIRECT_STATUS_HEADER = 'Asyncfn-Callback-Direct-Status';

/** A pending callback: the invocation's envelope (without its request body or headers) and the result. */
export function encodeCallback(queue: string, req: CallbackRequest, error: string, directStatus?: number): { subject: string; headers: MsgHdrs; data: Uint8Array } {
  const { headers } = encodeEnvelope({ ...req.invocation, headers: [], body: req.outcome.body });
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
  return { subject: CALLBACK_SUBJECT_PREFIX + queue, headers, data: req.outcome.body };
}

export function decodeCallback(headers: MsgHdrs | undefined, data: Uint8Array): { queue: string; request: CallbackRequest; directStatus: number | undefined } {
  const invocation = decodeEnvelope(headers, data);
  const get = (name: string): string => headers?.values(name, Match.IgnoreCase)[0] ?? '';
  const direct = Number(get(DIRECT_STATUS_HEADER));
  return {
    queue: get(ResultHeader.queue),
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

/**
 * Stores a callback whose direct attempt failed in the callback stream; resolves on PubAck. The
 * `attempt` of `req` is the function's (X-Retry), kept as is for every later attempt. `msgId`:
 * JetStream's deduplication id, when one callback may be handed off twice.
 */
export async function handOffCallback(js: JetStreamClient, queue: string, req: CallbackHandOff, msgId?: string): Promise<void> {
  const { subject, headers, data } = encodeCallback(queue, req, req.error, req.status);
  // A batch's callback is handed off by whichever process sees the batch done first: its id makes
  // a second hand-off within the stream's duplicate window a duplicate (src/callback/batch-done.ts).
  if (msgId !== undefined) headers.set('Nats-Msg-Id', msgId);
  await js.publish(subject, data, { headers, timeout: 5_000 });
}
