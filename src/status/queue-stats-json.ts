import type { LaneStats, QueueKind, QueueStats } from './queue-stats.js';

/** One stream in {@link QueuesJson}: QueueStats with its times as ISO strings and an age. */
export interface QueueJson {
  readonly name: string;
  readonly kind: QueueKind;
  readonly stream: string;
  readonly consumer: string | null;
  readonly messages: number;
  readonly pending: number;
  readonly inFlight: number | null;
  readonly waitingRetries: number | null;
  readonly ackPending: number | null;
  readonly redelivered: number | null;
  /** Deliveries so far (QueueStats.delivered): diff two reads for a throughput. */
  readonly delivered: number | null;
  readonly waitingPulls: number | null;
  readonly consumers: number;
  /** ISO time the oldest message not done yet was stored; null when there is none. */
  readonly oldestAt: string | null;
  /** `at` minus oldestAt, ms (never negative); null when there is none. */
  readonly oldestAgeMs: number | null;
  readonly lanes: readonly LaneStats[];
}

/**
 * The queue table as one JSON document: what `asyncfn queues --json` prints and
 * `GET /system/queues` answers, so that both say the same thing of the same state.
 */
export interface QueuesJson {
  /** ISO time the counts are relative to (the ages). */
  readonly at: string;
  readonly queues: readonly QueueJson[];
}

/** The document of `rows` read at `nowMs` (unix ms): every key present, null where a count does not apply or could not be told. */
export function queuesJson(rows: readonly QueueStats[], nowMs: number): QueuesJson {
  return {
    at: new Date(nowMs).toISOString(),
    queues: rows.map((r) => ({
      name: r.name,
      kind: r.kind,
      stream: r.stream,
      consumer: r.consumer,
      messages: r.messages,
      pending: r.pending,
      inFlight: r.inFlight,
      waitingRetries: r.waitingRetries,
      ackPending: r.ackPending,
      redelivered: r.redelivered,
      delivered: r.delivered,
      waitingPulls: r.waitingPulls,
      consumers: r.consumers,
      oldestAt: r.oldestAtMs === null ? null : new Date(r.oldestAtMs).toISOString(),
      oldestAgeMs: r.oldestAtMs === null ? null : Math.max(0, nowMs - r.oldestAtMs),
      lanes: r.lanes,
    })),
  };
}
