import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import { EnvelopeHeader } from '../queue/envelope.js';

/** The queue (stream and subject) of OpenFaaS's single queue, for dead letters that name none. */
export const DEFAULT_QUEUE = 'faas-request';

const DLQ_HEADER_PREFIX = 'asyncfn-dlq-';

/** The subject a dead letter's invocation is published to again: its queue's name. */
export function replaySubject(queue: string): string {
  return queue === '' ? DEFAULT_QUEUE : queue;
}

/**
 * The headers of a replayed invocation: the original envelope's (so the call id, function,
 * request and trace context are the same), without the `Asyncfn-Dlq-*` headers, and with
 * `Asyncfn-Enqueued-At` set to now, or the worker's max event age would expire it at once again.
 * `Nats-*` headers are dropped too: they are the server's (e.g. `Nats-Msg-Size` when read
 * headers-only) and a stale `Nats-Msg-Id` could make JetStream discard the replay as a duplicate.
 */
export function replayHeaders(stored: MsgHdrs | undefined, nowMs: number): MsgHdrs {
  const h = natsHeaders();
  const enqueuedAt = EnvelopeHeader.enqueuedAt.toLowerCase();
  if (stored) {
    for (const [key, values] of stored) {
      const lower = key.toLowerCase();
      if (lower.startsWith(DLQ_HEADER_PREFIX) || lower.startsWith('nats-') || lower === enqueuedAt) continue;
      for (const value of values) h.append(key, value);
    }
  }
  h.set(EnvelopeHeader.enqueuedAt, String(Math.trunc(nowMs)));
  return h;
}
