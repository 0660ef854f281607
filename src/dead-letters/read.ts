import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager, type OrderedConsumerOptions } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import { decodeDeadLetter, type DeadLetter } from '../queue/dead-letter.js';
import { filterSubject, matchesFilter, type DeadLetterFilter } from './filters.js';
import { DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECT_PREFIX } from '../queue/topology.js';

/** A dead letter with the stored message it was decoded from. */
export interface StoredDeadLetter {
  readonly letter: DeadLetter;
  readonly subject: string;
  /** The stored headers: the original envelope's plus `Asyncfn-Dlq-*`. */
  readonly headers: MsgHdrs | undefined;
  /** The original body; empty when read headers-only. */
  readonly data: Uint8Array;
  /** Unix ms when the stream stored it. */
  readonly storedAtMs: number;
}

/** The dead-letter stream at the start of a command: loops never go past `lastSeq`. */
export interface StreamBounds {
  readonly lastSeq: number;
  readonly messages: number;
}

/** JetStream access the commands need. */
export interface DeadLetterStreamAccess {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/** Messages fetched per pull while scanning. */
const SCAN_BATCH = 256;
/**
 * How long a pull may wait for messages the consumer reported pending; ms. It only runs out when
 * they were deleted while we read, and then the scan ends.
 */
const SCAN_EXPIRES_MS = 2_000;
/**
 * `--since` starts the consumer this much earlier than asked (by store time), because `atMs` comes
 * from the worker's clock and is set just before the dead letter is stored; the exact comparison
 * with `atMs` happens afterwards.
 */
const START_TIME_SLACK_MS = 5 * 60_000;

/** Last sequence and message count now, or undefined when the stream does not exist yet. */
export async function readBounds(jsm: JetStreamManager): Promise<StreamBounds | undefined> {
  try {
    const info = await jsm.streams.info(DEAD_LETTER_STREAM);
    return { lastSeq: info.state.last_seq, messages: info.state.messages };
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw err;
  }
}

/** One dead letter by sequence, or undefined when there is none (never stored, deleted or purged). */
export async function getDeadLetter(jsm: JetStreamManager, seq: number): Promise<StoredDeadLetter | undefined> {
  const m = await jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq });
  if (!m) return undefined;
  return toStored(m.seq, m.subject, m.header, m.data, m.time.getTime());
}

/**
 * The dead letters matching the filter, in sequence order, up to `bounds.lastSeq`. Explicit
 * sequences are fetched one by one (`onMissing` hears of those that do not exist); otherwise an
 * ordered consumer reads the stream (or one queue's subject) without acknowledging anything.
 */
export async function* selectDeadLetters(
  access: DeadLetterStreamAccess,
  filter: DeadLetterFilter,
  bounds: StreamBounds,
  opts: { headersOnly: boolean; onMissing?: (seq: number) => void },
): AsyncGenerator<StoredDeadLetter> {
  if (filter.seqs.length > 0) {
    for (const seq of filter.seqs) {
      const found = seq <= bounds.lastSeq ? await getDeadLetter(access.jsm, seq) : undefined;
      if (!found) opts.onMissing?.(seq);
      else if (matchesFilter(found.letter, filter)) yield found;
    }
    return;
  }
  if (bounds.messages === 0) return;
  for await (const found of scanStream(access.js, filter, bounds.lastSeq, opts.headersOnly)) {
    if (matchesFilter(found.letter, filter)) yield found;
  }
}

async function* scanStream(js: JetStreamClient, filter: DeadLetterFilter, lastSeq: number, headersOnly: boolean): AsyncGenerator<StoredDeadLetter> {
  const startMs = filter.sinceMs === undefined ? undefined : filter.sinceMs - START_TIME_SLACK_MS;
  const start: Partial<OrderedConsumerOptions> =
    startMs !== undefined && startMs > 0 ? { opt_start_time: new Date(startMs).toISOString() } : { deliver_policy: DeliverPolicy.All };
  const consumer = await js.consumers.get(DEAD_LETTER_STREAM, {
    filter_subjects: filterSubject(filter),
    headers_only: headersOnly,
    ...start,
  });
  try {
    // The server counts what the new consumer has to deliver; each message says how many remain.
    let remaining = (await consumer.info(true)).num_pending;
    while (remaining > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(SCAN_BATCH, remaining), expires: SCAN_EXPIRES_MS });
      let received = 0;
      try {
        for await (const m of batch) {
          received += 1;
          if (m.seq > lastSeq) return;
          const storedAtMs = Number(m.timestampNanos / 1_000_000n);
          yield toStored(m.seq, m.subject, m.headers, m.data, storedAtMs);
          remaining = m.seq === lastSeq ? 0 : m.info.pending;
          if (remaining === 0) break;
        }
      } finally {
        batch.stop();
      }
      if (received === 0) return;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

function toStored(seq: number, subject: string, headers: MsgHdrs | undefined, data: Uint8Array, storedAtMs: number): StoredDeadLetter {
  const decoded = decodeDeadLetter({ seq, header: headers, data });
  // A message stored without our headers still names its queue in the subject.
  const letter =
    decoded.queue === '' && subject.startsWith(DEAD_LETTER_SUBJECT_PREFIX) ? { ...decoded, queue: subject.slice(DEAD_LETTER_SUBJECT_PREFIX.length) } : decoded;
  return { letter, subject, headers, data, storedAtMs };
}
