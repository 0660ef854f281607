import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager, type OrderedConsumerOptions } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import { decodeDeadLetter, type DeadLetter } from '../queue/dead-letter.js';
import { filterSubject, matchesFilter, type DeadLetterFilter } from './filters.js';
import { scanStream } from '../queue/scan.js';
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
 * `afterSeq` (a page's cursor) starts after that sequence.
 */
export async function* selectDeadLetters(
  access: DeadLetterStreamAccess,
  filter: DeadLetterFilter,
  bounds: StreamBounds,
  opts: { headersOnly: boolean; onMissing?: (seq: number) => void; afterSeq?: number | undefined },
): AsyncGenerator<StoredDeadLetter> {
  if (filter.seqs.length > 0) {
    for (const seq of filter.seqs) {
      if (opts.afterSeq !== undefined && seq <= opts.afterSeq) continue;
      const found = seq <= bounds.lastSeq ? await getDeadLetter(access.jsm, seq) : undefined;
      if (!found) opts.onMissing?.(seq);
      else if (matchesFilter(found.letter, filter)) yield found;
    }
    return;
  }
  if (bounds.messages === 0 || (opts.afterSeq !== undefined && opts.afterSeq >= bounds.lastSeq)) return;
  for await (const found of scanDeadLetters(access.js, filter, bounds.lastSeq, opts.headersOnly, opts.afterSeq)) {
    if (matchesFilter(found.letter, filter)) yield found;
  }
}

async function* scanDeadLetters(
  js: JetStreamClient,
  filter: DeadLetterFilter,
  lastSeq: number,
  headersOnly: boolean,
  afterSeq: number | undefined,
): AsyncGenerator<StoredDeadLetter> {
  const startMs = filter.sinceMs === undefined ? undefined : filter.sinceMs - START_TIME_SLACK_MS;
  // A cursor wins over the start time: `--since` is compared exactly with `atMs` afterwards anyway.
  const start: Partial<OrderedConsumerOptions> =
    afterSeq !== undefined && afterSeq > 0
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 }
      : startMs !== undefined && startMs > 0
        ? { opt_start_time: new Date(startMs).toISOString() }
        : { deliver_policy: DeliverPolicy.All };
  const consumer = { filter_subjects: filterSubject(filter), headers_only: headersOnly, ...start };
  for await (const m of scanStream(js, { stream: DEAD_LETTER_STREAM, consumer, lastSeq })) {
    yield toStored(m.seq, m.subject, m.headers, m.data, Number(m.timestampNanos / 1_000_000n));
  }
}

function toStored(seq: number, subject: string, headers: MsgHdrs | undefined, data: Uint8Array, storedAtMs: number): StoredDeadLetter {
  const decoded = decodeDeadLetter({ seq, header: headers, data });
  // A message stored without our headers still names its queue in the subject.
  const letter =
    decoded.queue === '' && subject.startsWith(DEAD_LETTER_SUBJECT_PREFIX) ? { ...decoded, queue: subject.slice(DEAD_LETTER_SUBJECT_PREFIX.length) } : decoded;
  return { letter, subject, headers, data, storedAtMs };
}
