import { JetStreamApiCodes, RetentionPolicy, type ConsumerInfo, type JetStreamManager, type MsgRequest, type StreamInfo } from '@nats-io/jetstream';
import { Match } from '@nats-io/nats-core';
import { CALLBACK_DURABLE, CALLBACK_STREAM, DEAD_LETTER_STREAM, DELAYED_STREAM, infoOrUndefined } from '../queue/topology.js';
import { EnvelopeHeader } from '../queue/envelope.js';
import { laneId, parseLaneSubject } from '../queue/lanes.js';
import { byCodeUnits } from '../order.js';
import { isRecordKey, recordOf, type RecordsReader } from './wait.js';

/** What a row of `asyncfn queues` (and an entry of `GET /system/queues`) describes. */
export type QueueKind = 'queue' | 'delayed' | 'callbacks' | 'deadLetters';

/**
 * One stream asyncfn manages, as JetStream reports it (`asyncfn queues --help` explains each
 * count). null: does not apply to this kind of stream, or could not be told.
 */
export interface QueueStats {
  readonly kind: QueueKind;
  /** Queue name (= stream name); the default queue is `faas-request`. */
  readonly name: string;
  readonly stream: string;
  /** The durable consumer workers share; null for the dead letters, or when it does not exist yet. */
  readonly consumer: string | null;
  /** Messages stored in the stream. */
  readonly messages: number;
  /** Never delivered yet (consumer num_pending; without a consumer, every message). */
  readonly pending: number;
  /** Delivered, not acked yet: in flight plus waiting retries (num_ack_pending). */
  readonly ackPending: number | null;
  /** Of ackPending, running on a worker now (ackPending − waitingRetries). */
  readonly inFlight: number | null;
  /** Of ackPending, nak'd with a back-off delay and waiting in JetStream for their next attempt. */
  readonly waitingRetries: number | null;
  /** Delivered more than once and not acked yet (num_redelivered). */
  readonly redelivered: number | null;
  /**
   * Deliveries to workers since the consumer was created, retries included (its lanes' summed;
   * delivered.consumer_seq): two reads' difference over their interval is the queue's throughput.
   * null for streams no worker consumes (dead letters, delayed).
   */
  readonly delivered: number | null;
  /** Pull requests waiting for messages: workers with free slots (num_waiting). */
  readonly waitingPulls: number | null;
  /** JetStream consumers on the stream (state.consumer_count). */
  readonly consumers: number;
  /** Unix ms when the oldest message not yet done was stored; null when there is none. */
  readonly oldestAtMs: number | null;
  /**
   * A queue's function lanes (fair scheduling, concurrency keys: src/queue/lanes.ts), each with its
   * own consumer; the queue's counts above include them. Empty for other streams.
   */
  readonly lanes: readonly LaneStats[];
}

/** One lane of a queue: a function (`figlet.openfaas-fn`) or one of its concurrency keys (`figlet.openfaas-fn/tenant-1`). */
export interface LaneStats {
  readonly lane: string;
  readonly consumer: string;
  readonly pending: number;
  readonly ackPending: number;
  readonly inFlight: number | null;
  readonly waitingRetries: number | null;
  /** The lane's own concurrency limit over all workers (its consumer's max_ack_pending); null = none beyond the queue's. */
  readonly limit: number | null;
}

/** The default queue's names (config.queue): stream `faas-request`, consumer `faas-workers`. */
export interface DefaultQueueNames {
  readonly stream: string;
  readonly durable: string;
}

/**
 * Waiting retries are told apart from running invocations by reading each unacked message's call
 * id and its record; beyond these limits a queue's split is not worked out (null).
 */
export const SCAN_LIMITS = { messages: 1_000, bytes: 64 * 1024 * 1024 } as const;

export interface ReadQueuesDeps {
  readonly jsm: JetStreamManager;
  /** The invocation records bucket, when it exists. */
  readonly records: RecordsReader | undefined;
  readonly defaultQueue: DefaultQueueNames;
  /** Named queue q's durable consumer; default `q-workers` (queueSpecFor). */
  readonly durableFor: (queue: string) => string;
}

/**
 * Every stream asyncfn manages on this server: the default queue and named queues (streams with a
 * `<name>-workers` consumer), then the delayed-invocation, callback and dead-letter streams.
 */
export async function readQueues(deps: ReadQueuesDeps): Promise<QueueStats[]> {
  const { jsm } = deps;
  const streams: StreamInfo[] = [];
  for await (const info of jsm.streams.list()) streams.push(info);
  streams.sort((a, b) => byCodeUnits(a.config.name, b.config.name));

  const queues: QueueStats[] = [];
  const extras: QueueStats[] = [];
  for (const info of streams) {
    const name = info.config.name;
    if (name === DEAD_LETTER_STREAM || name === DELAYED_STREAM) {
      extras.push(storedStats(name === DELAYED_STREAM ? 'delayed' : 'deadLetters', info));
    } else if (name === CALLBACK_STREAM) {
      extras.push(await consumerStats(jsm, 'callbacks', info, await consumerInfo(jsm, name, CALLBACK_DURABLE), undefined));
    } else if (name === deps.defaultQueue.stream) {
      queues.unshift(await queueStats(jsm, info, deps.defaultQueue.durable, await consumerInfo(jsm, name, deps.defaultQueue.durable), deps.records));
    } else if (!name.startsWith('KV_') && !name.startsWith('OBJ_')) {
      // A named queue is a stream with its workers' consumer; other streams are not asyncfn's.
      const durable = deps.durableFor(name);
      const consumer = await consumerInfo(jsm, name, durable);
      if (consumer) queues.push(await queueStats(jsm, info, durable, consumer, deps.records));
    }
  }
  const order: readonly QueueKind[] = ['delayed', 'callbacks', 'deadLetters'];
  return [...queues, ...extras.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind))];
}

/** A queue's own consumer's counts plus its lanes' (consumers named `<durable>_f_…` and `<durable>_k_…`). */
async function queueStats(
  jsm: JetStreamManager,
  info: StreamInfo,
  durable: string,
  consumer: ConsumerInfo | undefined,
  records: RecordsReader | undefined,
): Promise<QueueStats> {
  const own = await consumerStats(jsm, 'queue', info, consumer, records);
  const laneConsumers: ConsumerInfo[] = [];
  for await (const c of jsm.consumers.list(info.config.name)) {
    if (c.name.startsWith(`${durable}_f_`) || c.name.startsWith(`${durable}_k_`)) laneConsumers.push(c);
  }
  if (laneConsumers.length === 0) return own;
  laneConsumers.sort((a, b) => byCodeUnits(a.name, b.name));
  // A lane without a limit of its own gets the queue's max_ack_pending: that is no limit to show.
  const queueLimit = consumer?.config.max_ack_pending;
  const laneLimit = (c: ConsumerInfo): number | null => {
    const limit = c.config.max_ack_pending;
    return limit !== undefined && limit > 0 && limit !== queueLimit ? limit : null;
  };
  const lanes: LaneStats[] = [];
  for (const c of laneConsumers) {
    const waitingRetries = await countWaitingRetries(jsm, info, c, records);
    const ref = parseLaneSubject(info.config.subjects?.[0] ?? info.config.name, c.config.filter_subject ?? '');
    lanes.push({
      lane: ref ? laneId(ref) : c.name,
      consumer: c.name,
      pending: c.num_pending,
      ackPending: c.num_ack_pending,
      inFlight: waitingRetries === null ? null : Math.max(0, c.num_ack_pending - waitingRetries),
      waitingRetries,
      limit: laneLimit(c),
    });
  }
  const sum = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a + b);
  // With no queue consumer yet, `own.pending` counts every stored message, the lanes' included.
  const ownPending = consumer ? own.pending : own.pending - lanes.reduce((n, l) => n + l.pending + l.ackPending, 0);
  return {
    ...own,
    pending: lanes.reduce((n, l) => n + l.pending, Math.max(0, ownPending)),
    ackPending: lanes.reduce<number | null>((n, l) => sum(n, l.ackPending), own.ackPending),
    inFlight: lanes.reduce<number | null>((n, l) => sum(n, l.inFlight), own.inFlight),
    waitingRetries: lanes.reduce<number | null>((n, l) => sum(n, l.waitingRetries), own.waitingRetries),
    redelivered: laneConsumers.reduce<number | null>((n, c) => sum(n, c.num_redelivered), own.redelivered),
    delivered: laneConsumers.reduce<number | null>((n, c) => sum(n, c.delivered.consumer_seq), own.delivered),
    waitingPulls: laneConsumers.reduce<number | null>((n, c) => sum(n, c.num_waiting), own.waitingPulls),
    lanes,
  };
}

async function consumerInfo(jsm: JetStreamManager, stream: string, durable: string): Promise<ConsumerInfo | undefined> {
  return infoOrUndefined(() => jsm.consumers.info(stream, durable), JetStreamApiCodes.ConsumerNotFound);
}

/**
 * A stream whose messages all wait for something other than a worker: dead letters for an
 * operator (replay or purge), delayed invocations for their time (a scheduler moves each onto its
 * queue when due).
 */
function storedStats(kind: 'delayed' | 'deadLetters', info: StreamInfo): QueueStats {
  const { state } = info;
  return {
    kind,
    name: info.config.name,
    stream: info.config.name,
    consumer: null,
    messages: state.messages,
    pending: state.messages,
    ackPending: null,
    inFlight: null,
    waitingRetries: null,
    redelivered: null,
    delivered: null,
    waitingPulls: null,
    consumers: state.consumer_count,
    oldestAtMs: state.messages > 0 ? timeOf(state.first_ts) : null,
    lanes: [],
  };
}

async function consumerStats(
  jsm: JetStreamManager,
  kind: 'queue' | 'callbacks',
  info: StreamInfo,
  consumer: ConsumerInfo | undefined,
  records: RecordsReader | undefined,
): Promise<QueueStats> {
  const { state } = info;
  const stream = info.config.name;
  const base = { kind, name: stream, stream, messages: state.messages, consumers: state.consumer_count, lanes: [] };
  if (!consumer) {
    // No worker has started on this queue yet: nothing was delivered.
    return {
      ...base,
      consumer: null,
      pending: state.messages,
      ackPending: 0,
      inFlight: 0,
      waitingRetries: 0,
      redelivered: 0,
      delivered: 0,
      waitingPulls: 0,
      oldestAtMs: await oldestNotDone(jsm, info, undefined),
    };
  }
  const ackPending = consumer.num_ack_pending;
  const waitingRetries = kind === 'queue' ? await countWaitingRetries(jsm, info, consumer, records) : null;
  return {
    ...base,
    consumer: consumer.name,
    pending: consumer.num_pending,
    ackPending,
    inFlight: waitingRetries === null ? null : Math.max(0, ackPending - waitingRetries),
    waitingRetries,
    redelivered: consumer.num_redelivered,
    delivered: consumer.delivered.consumer_seq,
    waitingPulls: consumer.num_waiting,
    oldestAtMs: await oldestNotDone(jsm, info, consumer),
  };
}

/**
 * When the oldest message not done yet was stored. A work-queue stream (as asyncfn provisions
 * queues) deletes a message once acked, so that is its first message. A stream that keeps acked
 * messages (an operator's own) has it right after the consumer's ack floor.
 */
async function oldestNotDone(jsm: JetStreamManager, info: StreamInfo, consumer: ConsumerInfo | undefined): Promise<number | null> {
  const { state } = info;
  if (state.messages === 0) return null;
  if (info.config.retention === RetentionPolicy.Workqueue || !consumer) return timeOf(state.first_ts);
  const seq = Math.max(consumer.ack_floor.stream_seq + 1, state.first_seq);
  if (seq > state.last_seq) return null;
  const msg = await jsm.streams.getMessage(info.config.name, nextFrom(seq));
  return msg ? msg.time.getTime() : null;
}

/**
 * JetStream counts retries waiting out their back-off (nak with a delay) in num_ack_pending, like
 * running invocations, and in num_redelivered only once redelivered: it cannot tell them apart.
 * Their invocation records can: the worker writes `retrying` when it naks. On a work-queue stream
 * the unacked messages are exactly those stored between the ack floor and the last delivered
 * sequence; each one's call id leads to its record.
 *
 * null when that cannot be worked out: no records bucket, a stream that keeps acked messages, or
 * more unacked messages than SCAN_LIMITS.
 */
async function countWaitingRetries(jsm: JetStreamManager, info: StreamInfo, consumer: ConsumerInfo, records: RecordsReader | undefined): Promise<number | null> {
  const ackPending = consumer.num_ack_pending;
  if (ackPending === 0) return 0;
  if (!records || info.config.retention !== RetentionPolicy.Workqueue) return null;
  const { messages, bytes } = info.state;
  const estimatedBytes = messages > 0 ? (bytes / messages) * ackPending : 0;
  if (ackPending > SCAN_LIMITS.messages || estimatedBytes > SCAN_LIMITS.bytes) return null;

  const callIds: string[] = [];
  const lastDelivered = consumer.delivered.stream_seq;
  // A lane's consumer (or the queue's, filtered on the plain subject) sees only its own subject.
  const subject = consumer.config.filter_subject || '>';
  let seq = consumer.ack_floor.stream_seq + 1;
  while (seq <= lastDelivered && callIds.length < ackPending) {
    const msg = await jsm.streams.getMessage(info.config.name, nextFrom(seq, subject));
    if (!msg || msg.seq > lastDelivered) break;
    const callId = msg.header?.values(EnvelopeHeader.callId, Match.IgnoreCase)[0];
    if (callId && isRecordKey(callId)) callIds.push(callId);
    seq = msg.seq + 1;
  }
  let waiting = 0;
  for (let i = 0; i < callIds.length; i += 64) {
    const batch = await Promise.all(callIds.slice(i, i + 64).map(async (id) => recordOf(await records.get(id))));
    waiting += batch.filter((r) => r?.state === 'retrying').length;
  }
  return waiting;
}

/**
 * The first stored message at or after `seq`, whatever its subject. nats-server ≥ 2.9 answers
 * `next_by_subj` on STREAM.MSG.GET; nats.js types it only for direct gets, which queue streams
 * do not allow.
 */
function nextFrom(seq: number, subject = '>'): MsgRequest {
  return { seq, next_by_subj: subject } as MsgRequest;
}

function timeOf(iso: string): number | null {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}
