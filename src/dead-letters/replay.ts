import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import { EnvelopeHeader } from '../queue/envelope.js';
import { DIRECT_STATUS_HEADER } from '../callback/stored.js';
import type { DeadLetter } from '../queue/dead-letter.js';
import { laneKeyToken, laneSubject, parseLaneSubject } from '../queue/lanes.js';
import { CONCURRENCY_KEY_HEADER } from '../functions/flow-annotations.js';
import { CALLBACK_SUBJECT_PREFIX } from '../queue/topology.js';

/** The queue (stream and subject) of OpenFaaS's single queue, for dead letters that name none. */
export const DEFAULT_QUEUE = 'faas-request';

const DLQ_HEADER_PREFIX = 'asyncfn-dlq-';

/** The plain subject of a dead letter's queue (a queue's stream and subject share its name). */
export function queueSubjectOf(queue: string): string {
  return queue === '' ? DEFAULT_QUEUE : queue;
}

/**
 * The subject a dead letter is published to again. A failed callback goes to the callback stream:
 * replaying it delivers the callback again; it never runs the function a second time. An
 * invocation goes, when its queue's stream takes lanes (`lanes`), to the lane a gateway publishes
 * it on: its `X-Concurrency-Key`'s, else its function's (whatever `fair_scheduling` says), so the
 * function's `max_inflight`, its key's and its rate limits hold for replays too. Otherwise, and
 * for a name no lane can hold (an OpenFaaS publisher's), the queue's plain subject.
 */
export function replaySubject(letter: Pick<DeadLetter, 'queue' | 'reason' | 'invocation'>, lanes: boolean): string {
  const queue = queueSubjectOf(letter.queue);
  if (letter.reason === 'callbackFailed') return CALLBACK_SUBJECT_PREFIX + queue;
  const invocation = letter.invocation;
  if (!lanes || !invocation) return queue;
  const key = invocation.headers.find(([name]) => name === CONCURRENCY_KEY_HEADER)?.[1];
  const lane = laneSubject(queue, { name: invocation.functionName, namespace: invocation.namespace, key: key === undefined ? undefined : laneKeyToken(key) });
  // Workers serve only the lanes they can read back; the queue's own consumer serves the plain subject.
  return parseLaneSubject(queue, lane) === undefined ? queue : lane;
}

/**
 * The headers of a replayed invocation: the original envelope's (so the call id, function,
 * request and trace context are the same), without the `Asyncfn-Dlq-*` headers, and with
 * `Asyncfn-Enqueued-At` set to now, or the worker's max event age would expire it at once again.
 * A failed callback's direct-attempt status is dropped, so the replay is posted again (its
 * callback_max_age counts afresh from the replay, which the stream stores with a new timestamp).
 * `Nats-*` headers are dropped too: they are the server's (e.g. `Nats-Msg-Size` when read
 * headers-only) and a stale `Nats-Msg-Id` could make JetStream discard the replay as a duplicate.
 */
export function replayHeaders(stored: MsgHdrs | undefined, nowMs: number): MsgHdrs {
  const h = natsHeaders();
  const enqueuedAt = EnvelopeHeader.enqueuedAt.toLowerCase();
  // A replay is a new enqueue: the old max-event-age deadline would expire it at once.
  const expiresAt = EnvelopeHeader.expiresAt.toLowerCase();
  // A replayed callback is posted again: its direct attempt's answer (a 404) must not end it unasked.
  const directStatus = DIRECT_STATUS_HEADER.toLowerCase();
  if (stored) {
    for (const [key, values] of stored) {
      const lower = key.toLowerCase();
      if (lower.startsWith(DLQ_HEADER_PREFIX) || lower.startsWith('nats-') || lower === enqueuedAt || lower === expiresAt || lower === directStatus) continue;
      for (const value of values) h.append(key, value);
    }
  }
  h.set(EnvelopeHeader.enqueuedAt, String(Math.trunc(nowMs)));
  return h;
}
