import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { millis, nanos, type NatsConnection } from '@nats-io/nats-core';
import { laneDurable, laneSubject, laneWildcard, type LaneRef } from './lanes.js';
import type { Logger } from 'pino';
import type { Config, QueueServed } from '../config/index.js';
import { MAX_RATE_PERIOD_MS } from '../flow/rate.js';
import { IncompatibleQueueError } from './errors.js';
import { queuesServed } from './queues.js';
import { checkConsumer, checkServer, checkStream, subjectMatches } from './topology-checks.js';
import { BATCH_EVENT_PREFIX, BATCH_EVENTS_STREAM } from './batch-events.js';
import { untilDirectGetAnswers } from './direct-get-probe.js';

/*
 * What asyncfn creates on the NATS server: every stream, consumer and KV bucket, named here and
 * created only here. A gateway calls provisionGateway and a worker provisionWorker, once each at
 * startup; either may start first. What exists already is used as it is (a queue's stream and
 * consumer are checked first, see topology-checks.ts).
 *
 *   queue (default)     stream + subject `faas-request`, durable pull consumer `faas-workers`     (OpenFaaS's names)
 *   queue q (named)     stream + subject `q`, consumer `q-workers`; the gateway creates the stream on first use
 *   delayed             stream `asyncfn-delayed` (`asyncfn.delayed.<queue subject>`), consumer `asyncfn-scheduler-<queue>` per queue (its scheduler creates it)
 *   dead letters        stream `asyncfn-dead-letters` (`asyncfn.dead-letters.<queue>`)                  worker
 *   callbacks           stream `asyncfn-callbacks` (`asyncfn.callbacks.<queue>`), consumer `asyncfn-callback-workers`   worker
 *   batch events        stream `asyncfn-batch-events` (`asyncfn.batch.<batch-id>.>`, see batch-events.ts)          both
 *   KV buckets          asyncfn_invocations, asyncfn_results, asyncfn_cancellations, asyncfn_batches (both), asyncfn_idempotency (gateway),
 *                       asyncfn_rate_limits (worker, when a function has a rate limit: openRateLimitsBucket),
 *                       asyncfn_keys (both, no TTL: the progress URL signing key unless a secret file holds one: openKeysBucket)
 *   object store        asyncfn_payloads (stream `OBJ_asyncfn_payloads`): large bodies and results (both)
 *   age limits          records_ttl; asyncfn_invocations, asyncfn_cancellations and asyncfn_payloads records_ttl + max_delay
 *                       (scheduledBucketOptions), widened at startup when shorter
 */

/** What one queue needs from JetStream: a stream and a durable pull consumer on it. */
export interface QueueSpec {
  /** Stream name; OpenFaaS: `faas-request`. */
  stream: string;
  /** Subject the gateway publishes to; OpenFaaS: `faas-request`. */
  subject: string;
  /** Durable consumer name; OpenFaaS: `faas-workers`. */
  durable: string;
  /** Stream replicas (OpenFaaS `stream_replication`); 3 on a 3-node cluster. */
  replicas: number;
  storage: 'file' | 'memory';
  /** Consumer ack_wait in ms; the worker extends it while a function runs. */
  ackWaitMs: number;
  /** Consumer max_ack_pending: in-flight plus retries waiting in JetStream. */
  maxAckPending: number;
  /** Duplicate window in ms for `Nats-Msg-Id` deduplication; default 2 minutes. */
  duplicateWindowMs?: number;
}

/**
 * JetStream names for a queue. The default queue keeps OpenFaaS's names (stream and subject
 * `faas-request`, consumer `faas-workers`); a named queue `q` gets stream and subject `q` and
 * consumer `q-workers`.
 */
export function queueSpecFor(config: Config, name: string = config.queue.stream): QueueSpec {
  const isDefault = name === config.queue.stream;
  return {
    stream: name,
    subject: isDefault ? config.queue.subject : name,
    durable: isDefault ? config.queue.durable : `${name}-workers`,
    replicas: config.queue.replicas,
    storage: config.queue.storage,
    ackWaitMs: config.worker.ackWaitMs,
    maxAckPending: config.queue.maxAckPending,
    // Idempotency-Key deduplication must last as long as the key's claim (idempotency_window).
    duplicateWindowMs: config.records.idempotencyWindowMs,
  };
}

/**
 * Delayed invocations (X-Delay-Seconds, X-Not-Before) wait in a stream of their own until a
 * scheduler consumer per queue moves each onto its queue when due (see delayed.ts).
 */
export const DELAYED_STREAM = 'asyncfn-delayed';
const DELAYED_PREFIX = 'asyncfn.delayed';

/** Where the gateway publishes an invocation of `queueSubject` that must wait. */
export function delayedSubject(queueSubject: string): string {
  return `${DELAYED_PREFIX}.${queueSubject}`;
}

/** The scheduler's durable consumer for one queue. */
export function schedulerDurable(spec: Pick<QueueSpec, 'stream'>): string {
  return `asyncfn-scheduler-${spec.stream}`;
}

/**
 * Dead letters (see dead-letter.ts): one stream for all queues; the subject names the queue
 * (`asyncfn.dead-letters.<queue>`), so listing one queue's dead letters is a subject filter.
 */
export const DEAD_LETTER_STREAM = 'asyncfn-dead-letters';
export const DEAD_LETTER_SUBJECT_PREFIX = 'asyncfn.dead-letters.';

/** Durable callbacks (see src/callback/durable.ts): results whose callback is being retried. */
export const CALLBACK_STREAM = 'asyncfn-callbacks';
export const CALLBACK_SUBJECT_PREFIX = 'asyncfn.callbacks.';
export const CALLBACK_DURABLE = 'asyncfn-callback-workers';

/** KV bucket holding one invocation record per call id (src/status/records.ts). */
export const RECORDS_BUCKET = 'asyncfn_invocations';
/** KV bucket holding the function results callers asked to keep, keyed by call id (src/status/results.ts). */
export const RESULTS_BUCKET = 'asyncfn_results';
/** KV bucket mapping an idempotency key to the call id of the first request that used it (src/status/idempotency.ts). */
export const IDEMPOTENCY_BUCKET = 'asyncfn_idempotency';
/** KV bucket of cancellation markers, keyed by call id (src/status/cancellations.ts). */
export const CANCELLATIONS_BUCKET = 'asyncfn_cancellations';
/** KV bucket of rate-limit state shared by worker replicas, one key per limiter (src/flow/shared-rate-limiter.ts). */
export const RATE_LIMITS_BUCKET = 'asyncfn_rate_limits';
/**
 * Object Store bucket (`@nats-io/obj`, see payload-store.ts) of request bodies and kept results
 * too large for one message: stream `OBJ_asyncfn_payloads`.
 */
export const PAYLOAD_BUCKET = 'asyncfn_payloads';
/** The stream behind an Object Store bucket. */
export const payloadStreamName = (bucket: string): string => `OBJ_${bucket}`;
/** KV bucket of batch records, keyed by batch id (src/status/batches.ts). */
export const BATCHES_BUCKET = 'asyncfn_batches';
/** KV bucket of keys gateways and workers share, generated by whichever starts first (src/status/progress-key.ts). */
export const KEYS_BUCKET = 'asyncfn_keys';
/**
 * KV bucket of the attempt ledger, keyed by call id: the attempts of an invocation started and its
 * throttled deliveries (src/status/attempt-ledger.ts). Named for what it first held.
 */
export const THROTTLES_BUCKET = 'asyncfn_throttles';

/** The buckets a gateway writes: records, results (read), idempotency claims, cancellation requests. */
export interface GatewayTopology {
  readonly records: KV;
  readonly results: KV;
  readonly idempotency: KV;
  readonly cancellations: KV;
  readonly batches: KV;
}

/**
 * Everything a gateway needs on the server: the default queue's stream (named queues' streams are
 * made on first use, see the gateway's queue router), the delayed stream, and its four buckets.
 */
export async function provisionGateway(nc: NatsConnection, jsm: JetStreamManager, config: Config, logger: Logger): Promise<GatewayTopology> {
  await ensureStream(jsm, queueSpecFor(config), logger);
  await ensureDelayedStream(jsm, { ...config.queue, duplicateWindowMs: config.records.idempotencyWindowMs }, logger);
  const bucket = bucketOptions(config);
  const scheduled = scheduledBucketOptions(config);
  await ensurePayloadBucket(jsm, scheduled, logger);
  return {
    records: await openScheduledKvBucket(nc, jsm, RECORDS_BUCKET, scheduled, logger),
    results: await openKvBucket(nc, RESULTS_BUCKET, bucket),
    // A claim lasts as long as the streams' duplicate window: idempotency_window, not records_ttl.
    idempotency: await openKvBucket(nc, IDEMPOTENCY_BUCKET, { ...bucket, ttlMs: config.records.idempotencyWindowMs }),
    cancellations: await openScheduledKvBucket(nc, jsm, CANCELLATIONS_BUCKET, scheduled, logger),
    batches: await openBatches(nc, jsm, config),
  };
}

/** A queue a worker serves, with its stream and consumer in place. */
export interface ProvisionedQueue {
  readonly served: QueueServed;
  readonly spec: QueueSpec;
  /** The consumer as it is on the server (an operator's own may differ from `spec`). */
  readonly consumer: ConsumerInfo;
  /** The stream takes the lane subjects (src/queue/lanes.ts): the worker pulls the functions' lanes too. */
  readonly lanes: boolean;
}

/** The buckets a worker writes, and the queues it serves in the order of queuesServed. */
export interface WorkerTopology {
  readonly records: KV;
  readonly results: KV;
  readonly cancellations: KV;
  /** Throttled deliveries per call id (adaptive concurrency). */
  readonly throttles: KV;
  readonly batches: KV;
  readonly queues: readonly ProvisionedQueue[];
}

/** Extra time past callback_timeout before JetStream redelivers a pending callback to another worker, ms. */
const CALLBACK_ACK_WAIT_MARGIN_MS = 30_000;

/**
 * Everything a worker needs on the server: its buckets, the delayed, dead-letter and callback
 * streams, and the stream and durable consumer of every queue it serves. Each queue's delayed
 * scheduler creates its own consumer when it starts (ensureSchedulerConsumer).
 */
export async function provisionWorker(nc: NatsConnection, jsm: JetStreamManager, config: Config, logger: Logger): Promise<WorkerTopology> {
  for (const warning of checkServer(nc.info?.version)) logger.warn({ server: nc.info?.version }, warning);
  const bucket = bucketOptions(config);
  const scheduled = scheduledBucketOptions(config);
  const records = await openScheduledKvBucket(nc, jsm, RECORDS_BUCKET, scheduled, logger);
  const results = await openKvBucket(nc, RESULTS_BUCKET, bucket);
  await ensureDelayedStream(jsm, { ...config.queue, duplicateWindowMs: config.records.idempotencyWindowMs }, logger);
  const cancellations = await openScheduledKvBucket(nc, jsm, CANCELLATIONS_BUCKET, scheduled, logger);
  const throttles = await openKvBucket(nc, THROTTLES_BUCKET, bucket);
  await ensurePayloadBucket(jsm, scheduled, logger);
  const batches = await openBatches(nc, jsm, config);
  await ensureDeadLetterStream(jsm, config.queue);
  await ensureCallbackStream(jsm, { ...config.queue, ackWaitMs: config.callback.timeoutMs + CALLBACK_ACK_WAIT_MARGIN_MS }, logger);
  const queues: ProvisionedQueue[] = [];
  for (const served of queuesServed(config)) {
    const queueLogger = logger.child({ queue: served.name });
    const spec = queueSpecFor(config, served.name);
    const stream = await ensureStream(jsm, spec, queueLogger);
    queues.push({ served, spec, consumer: await ensureConsumer(jsm, spec, served.maxInflight, queueLogger), lanes: streamHasLanes(stream, spec) });
  }
  return { records, results, cancellations, throttles, batches, queues };
}

/**
 * Creates the stream if missing; otherwise checks that the operator's stream can hold invocations
 * safely. Used by the gateway and the worker, so either may start first.
 */
export async function ensureStream(jsm: JetStreamManager, spec: QueueSpec, logger: Logger): Promise<StreamInfo> {
  const { info: existing, created } = await addStreamIfMissing(jsm, {
    name: spec.stream,
    // The plain subject (OpenFaaS gateways, fair_scheduling=off) and the functions' lanes (lanes.ts).
    subjects: [spec.subject, laneWildcard(spec.subject)],
    // Work-queue retention: an acked invocation is removed, so the stream is exactly the backlog.
    retention: RetentionPolicy.Workqueue,
    storage: spec.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: spec.replicas,
    // A full stream must refuse new work (the gateway answers 503), never drop accepted work.
    discard: DiscardPolicy.New,
    duplicate_window: nanos(spec.duplicateWindowMs ?? 120_000),
  });
  if (created) {
    logger.info({ stream: spec.stream, replicas: spec.replicas, storage: spec.storage }, 'created stream');
    return existing;
  }
  const { problems, warnings } = checkStream(existing, spec);
  for (const warning of warnings) logger.warn({ stream: spec.stream }, warning);
  if (problems.length > 0) throw new IncompatibleQueueError(`stream "${spec.stream}"`, problems);
  return addLaneSubjects(jsm, await widenDuplicateWindow(jsm, existing, spec, logger), spec, logger);
}

/** Whether the stream stores the queue's lane subjects (lanes.ts); without them every invocation uses the plain subject. */
export function streamHasLanes(info: StreamInfo, spec: Pick<QueueSpec, 'subject'>): boolean {
  const probe = laneSubject(spec.subject, { name: 'a', namespace: 'b' });
  return (info.config.subjects ?? []).some((s) => subjectMatches(s, probe));
}

/**
 * A stream made before lanes existed (an older asyncfn's, or OpenFaaS's: exactly the plain subject)
 * gets the lane wildcard added, which changes nothing for the messages and consumers it has. An
 * operator's stream with other subjects is left as it is: its queue works without lanes (one FIFO).
 */
async function addLaneSubjects(jsm: JetStreamManager, info: StreamInfo, spec: QueueSpec, logger: Logger): Promise<StreamInfo> {
  const subjects = info.config.subjects ?? [];
  if (streamHasLanes(info, spec)) return info;
  if (subjects.length !== 1 || subjects[0] !== spec.subject) {
    logger.warn(
      { stream: spec.stream, subjects },
      `the stream does not take "${laneWildcard(spec.subject)}": its functions share one FIFO (no fair scheduling or per-key limits)`,
    );
    return info;
  }
  try {
    const updated = await jsm.streams.update(spec.stream, { subjects: [spec.subject, laneWildcard(spec.subject)] });
    logger.info({ stream: spec.stream }, `added the lane subjects "${laneWildcard(spec.subject)}" to the stream`);
    return updated;
  } catch (err) {
    logger.warn({ err, stream: spec.stream }, 'could not add the lane subjects to the stream: its functions share one FIFO');
    return info;
  }
}

export interface LaneConsumerOptions {
  /** The queue consumer's ack_wait, ms (the ack-extend sweep is timed from it). */
  readonly ackWaitMs: number;
  /** The lane's concurrency limit over all workers (a function's or a key's `max_inflight`), or the queue's max_ack_pending. */
  readonly maxAckPending: number;
  /** The server removes a lane consumer nobody has pulled for this long, ms. */
  readonly inactiveMs: number;
}

/**
 * Creates a lane's durable pull consumer, or updates its limit when the function's annotation
 * changed. JetStream enforces `max_ack_pending` over every worker replica: that is the lane's
 * concurrency limit. An idle lane's consumer is removed by the server after `inactiveMs`.
 */
export async function ensureLaneConsumer(jsm: JetStreamManager, spec: QueueSpec, lane: LaneRef, opts: LaneConsumerOptions): Promise<string> {
  const durable = laneDurable(spec.durable, lane);
  const existing = await infoOrUndefined(() => jsm.consumers.info(spec.stream, durable), JetStreamApiCodes.ConsumerNotFound);
  if (!existing) {
    await jsm.consumers.add(spec.stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(opts.ackWaitMs),
      max_deliver: -1,
      max_ack_pending: opts.maxAckPending,
      filter_subject: laneSubject(spec.subject, lane),
      inactive_threshold: nanos(opts.inactiveMs),
    });
  } else if (existing.config.max_ack_pending !== opts.maxAckPending) {
    await jsm.consumers.update(spec.stream, durable, { max_ack_pending: opts.maxAckPending });
  }
  return durable;
}

/**
 * A stream made with a shorter duplicate window (an older asyncfn, or the 2-minute default) would
 * forget an Idempotency-Key before its claim expires and store a repeat: widen it. Widening is the
 * one change made to an existing stream; it only makes deduplication last longer.
 */
async function widenDuplicateWindow(jsm: JetStreamManager, info: StreamInfo, spec: QueueSpec, logger: Logger): Promise<StreamInfo> {
  const wanted = spec.duplicateWindowMs;
  const current = millis(info.config.duplicate_window ?? 0);
  if (wanted === undefined || current >= wanted) return info;
  const updated = await jsm.streams.update(spec.stream, { duplicate_window: nanos(wanted) });
  logger.info({ stream: spec.stream, fromMs: current, toMs: wanted }, 'widened the duplicate window to idempotency_window');
  return updated;
}

/** Creates the durable consumer if missing; otherwise checks it and uses it as it is. */
export async function ensureConsumer(jsm: JetStreamManager, spec: QueueSpec, maxInflight: number, logger: Logger): Promise<ConsumerInfo> {
  const existing = await infoOrUndefined(() => jsm.consumers.info(spec.stream, spec.durable), JetStreamApiCodes.ConsumerNotFound);
  if (!existing) {
    const info = await jsm.consumers.add(spec.stream, {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(spec.ackWaitMs),
      // Unlimited deliveries: retries are decided by asyncfn's policy, never by JetStream giving up.
      max_deliver: -1,
      max_ack_pending: spec.maxAckPending,
      filter_subject: spec.subject,
    });
    logger.info({ stream: spec.stream, consumer: spec.durable, ackWaitMs: spec.ackWaitMs }, 'created consumer');
    return info;
  }
  const { problems, warnings } = checkConsumer(existing, spec, maxInflight);
  for (const warning of warnings) logger.warn({ stream: spec.stream, consumer: spec.durable }, warning);
  if (problems.length > 0) throw new IncompatibleQueueError(`consumer "${spec.durable}" on stream "${spec.stream}"`, problems);
  return existing;
}

export interface DelayedStreamOptions {
  readonly replicas: number;
  readonly storage: 'file' | 'memory';
  /** Duplicate window for Idempotency-Key deduplication, ms. */
  readonly duplicateWindowMs: number;
}

/** Creates the delayed-invocation stream if missing. */
export async function ensureDelayedStream(jsm: JetStreamManager, opts: DelayedStreamOptions, logger: Logger): Promise<void> {
  const { created } = await addStreamIfMissing(jsm, {
    name: DELAYED_STREAM,
    subjects: [`${DELAYED_PREFIX}.>`],
    retention: RetentionPolicy.Workqueue,
    storage: opts.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: opts.replicas,
    discard: DiscardPolicy.New,
    duplicate_window: nanos(opts.duplicateWindowMs),
  });
  if (created) logger.info({ stream: DELAYED_STREAM, replicas: opts.replicas }, 'created stream');
}

/**
 * The longest ack_wait of a scheduler consumer, ms: 30 s. A scheduler holds a waiting invocation
 * only from its pull to its nak or move (milliseconds), so its ack_wait matters only when a
 * scheduler (or its nats-server) dies holding one: then it is how soon the invocation is seen
 * again. The queue's ack_wait (`ack_wait`, "how soon JetStream redelivers the messages of a worker
 * that died") is used when it is shorter; a move that outlasts it is repeated and its dedup id
 * makes the repeat a no-op.
 */
export const SCHEDULER_MAX_ACK_WAIT_MS = 30_000;

/** Creates one queue's scheduler consumer on the delayed stream if missing. */
export async function ensureSchedulerConsumer(jsm: JetStreamManager, spec: QueueSpec): Promise<void> {
  const durable = schedulerDurable(spec);
  const existing = await infoOrUndefined(() => jsm.consumers.info(DELAYED_STREAM, durable), JetStreamApiCodes.ConsumerNotFound);
  if (existing) return;
  await jsm.consumers.add(DELAYED_STREAM, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: delayedSubject(spec.subject),
    ack_wait: nanos(Math.min(spec.ackWaitMs, SCHEDULER_MAX_ACK_WAIT_MS)),
    max_deliver: -1,
    // Every waiting invocation is "pending ack" between its naks: no limit on how many may wait.
    max_ack_pending: -1,
  });
}

/** Creates the dead-letter stream if missing. Dead letters are kept until purged. */
export async function ensureDeadLetterStream(jsm: JetStreamManager, opts: { replicas: number; storage: 'file' | 'memory' }): Promise<void> {
  await addStreamIfMissing(jsm, {
    name: DEAD_LETTER_STREAM,
    subjects: [`${DEAD_LETTER_SUBJECT_PREFIX}>`],
    retention: RetentionPolicy.Limits,
    storage: opts.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: opts.replicas,
    // Full means full: refuse (the worker keeps the message and retries) rather than drop old dead letters.
    discard: DiscardPolicy.New,
  });
}

/**
 * Creates the callback stream and its durable consumer if missing, and sets the consumer's
 * ack_wait to `ackWaitMs` when it differs: it follows callback_timeout (one attempt's longest
 * wait), so a consumer made under a shorter timeout would redeliver an attempt still waiting for
 * its receiver, and the receiver would get a second POST of it at the same time.
 */
export async function ensureCallbackStream(
  jsm: JetStreamManager,
  opts: { replicas: number; storage: 'file' | 'memory'; ackWaitMs: number },
  logger?: Logger,
): Promise<void> {
  await addStreamIfMissing(jsm, {
    name: CALLBACK_STREAM,
    subjects: [`${CALLBACK_SUBJECT_PREFIX}>`],
    retention: RetentionPolicy.Workqueue,
    storage: opts.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: opts.replicas,
  });
  const existing = await infoOrUndefined(() => jsm.consumers.info(CALLBACK_STREAM, CALLBACK_DURABLE), JetStreamApiCodes.ConsumerNotFound);
  if (!existing) {
    await jsm.consumers.add(CALLBACK_STREAM, {
      durable_name: CALLBACK_DURABLE,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(opts.ackWaitMs),
      max_deliver: -1,
    });
  } else if (existing.config.ack_wait !== nanos(opts.ackWaitMs)) {
    await jsm.consumers.update(CALLBACK_STREAM, CALLBACK_DURABLE, { ack_wait: nanos(opts.ackWaitMs) });
    logger?.info(
      { consumer: CALLBACK_DURABLE, fromMs: millis(existing.config.ack_wait ?? 0), toMs: opts.ackWaitMs },
      'set the callback consumer ack_wait to callback_timeout + 30s',
    );
  }
}

/**
 * Creates the payload bucket when missing (gateway and worker both may). Its TTL is `records_ttl`
 * plus `max_delay` (scheduledBucketOptions: the body of an invocation scheduled that far ahead must
 * still be there when it runs): objects are deleted when their invocation is final (or its dead
 * letter purged), and the age limit only removes orphans (a gateway killed between upload and
 * publish). An existing bucket's shorter age limit is widened (widenMaxAge) when `logger` is given.
 */
export async function ensurePayloadBucket(jsm: JetStreamManager, opts: KvBucketOptions, logger?: Logger, bucket: string = PAYLOAD_BUCKET): Promise<void> {
  await new Objm(jsm.jetstream())
    .create(bucket, {
      ttl: nanos(opts.ttlMs),
      replicas: opts.replicas,
      storage: opts.storage === 'memory' ? StorageType.Memory : StorageType.File,
    })
    .catch(async (err: unknown) => {
      // Another process created it meanwhile (with other options: the first one's stand).
      if (!(await infoOrUndefined(() => jsm.streams.info(payloadStreamName(bucket)), JetStreamApiCodes.StreamNotFound))) throw err;
    });
  if (logger) await widenMaxAge(jsm, payloadStreamName(bucket), opts.ttlMs, logger);
}

/**
 * The batch records bucket and the batch-events stream, if missing (gateway and worker both: either
 * may start first). Events live as long as the records (`records_ttl`), and their duplicate window
 * is `idempotency_window`: an item redelivered within it never counts twice.
 */
async function openBatches(nc: NatsConnection, jsm: JetStreamManager, config: Config): Promise<KV> {
  await addStreamIfMissing(jsm, {
    name: BATCH_EVENTS_STREAM,
    subjects: [`${BATCH_EVENT_PREFIX}>`],
    retention: RetentionPolicy.Limits,
    storage: config.queue.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: config.queue.replicas,
    // Full means full: the worker keeps the item unacked and retries, never drops a count.
    discard: DiscardPolicy.New,
    max_age: nanos(config.records.ttlMs),
    duplicate_window: nanos(Math.min(config.records.idempotencyWindowMs, config.records.ttlMs)),
  });
  return openKvBucket(nc, BATCHES_BUCKET, bucketOptions(config));
}

export interface KvBucketOptions {
  readonly replicas: number;
  readonly storage: 'file' | 'memory';
  /** Bucket-level TTL, ms (nats-server 2.9 ignores per-key TTLs). */
  readonly ttlMs: number;
}

/** Bucket options from the config: the queue's replicas and storage, `records_ttl`. */
export function bucketOptions(config: { queue: { replicas: number; storage: 'file' | 'memory' }; records: { ttlMs: number } }): KvBucketOptions {
  return { replicas: config.queue.replicas, storage: config.queue.storage, ttlMs: config.records.ttlMs };
}

/**
 * Options of the buckets that hold what a scheduled invocation needs until it runs (its record,
 * its cancellation marker, its large body): `records_ttl` past the longest delay (`max_delay`).
 * A bucket's age limit is the same for every key (nats-server 2.9 ignores per-key TTLs), and a
 * record or marker written at enqueue must outlive the delay: else the invocation would be "not
 * found" while scheduled, and run after it was cancelled.
 */
export function scheduledBucketOptions(config: {
  queue: { replicas: number; storage: 'file' | 'memory' };
  records: { ttlMs: number; maxDelayMs: number };
}): KvBucketOptions {
  return { ...bucketOptions(config), ttlMs: config.records.ttlMs + config.records.maxDelayMs };
}

/**
 * Creates or opens a bucket of scheduledBucketOptions; one made with a shorter age limit (an older
 * asyncfn, a smaller `max_delay` then) is widened to it (widenMaxAge).
 */
export async function openScheduledKvBucket(nc: NatsConnection, jsm: JetStreamManager, bucket: string, opts: KvBucketOptions, logger: Logger): Promise<KV> {
  const kv = await openKvBucket(nc, bucket, opts);
  await widenMaxAge(jsm, `KV_${bucket}`, opts.ttlMs, logger);
  return kv;
}

/**
 * Raises the stream's age limit to `wantedMs` when it is shorter. Never lowers it: a shorter limit
 * would drop what invocations accepted under the longer one still need (a scheduled invocation's
 * cancellation); an operator who wants it shorter edits the stream. No limit (0) stays.
 */
export async function widenMaxAge(jsm: JetStreamManager, stream: string, wantedMs: number, logger: Logger): Promise<void> {
  const info = await jsm.streams.info(stream);
  const currentMs = millis(info.config.max_age ?? 0);
  if (currentMs === 0 || currentMs >= wantedMs) return;
  await jsm.streams.update(stream, { max_age: nanos(wantedMs) });
  logger.info({ stream, fromMs: currentMs, toMs: wantedMs }, 'widened the age limit to records_ttl + max_delay');
}

/** Creates the KV bucket if missing (keeping one value per key) and opens it. */
export async function openKvBucket(nc: NatsConnection, bucket: string, opts: KvBucketOptions): Promise<KV> {
  return createBucket(nc, bucket, {
    history: 1,
    ttl: opts.ttlMs,
    replicas: opts.replicas,
    storage: opts.storage === 'memory' ? 'memory' : 'file',
  });
}

/**
 * Creates the rate-limit bucket if missing and opens it. Its TTL is the longest rate period (24 h),
 * not `records_ttl`: a limiter's state matters for at most one period after its last write, so an
 * idle key disappears then and never earlier (src/flow/rate.ts, takeTokens).
 */
export async function openRateLimitsBucket(nc: NatsConnection, opts: { replicas: number; storage: 'file' | 'memory' }): Promise<KV> {
  return openKvBucket(nc, RATE_LIMITS_BUCKET, { replicas: opts.replicas, storage: opts.storage, ttlMs: MAX_RATE_PERIOD_MS });
}

/**
 * Creates the keys bucket if missing and opens it. No TTL: a key that expired would be replaced by
 * the next process to start while running ones keep the old one, and they would disagree.
 */
export async function openKeysBucket(nc: NatsConnection, opts: { replicas: number; storage: 'file' | 'memory' }): Promise<KV> {
  return createBucket(nc, KEYS_BUCKET, { history: 1, replicas: opts.replicas, storage: opts.storage === 'memory' ? 'memory' : 'file' });
}

/**
 * The invocation records bucket, read-only: undefined when it does not exist (no gateway or worker
 * has run against this server). Never creates it: an inspection must not provision anything.
 */
export async function openRecordsIfPresent(nc: NatsConnection, jsm: JetStreamManager): Promise<KV | undefined> {
  const info = await infoOrUndefined(() => jsm.streams.info(`KV_${RECORDS_BUCKET}`), JetStreamApiCodes.StreamNotFound);
  if (!info) return undefined;
  return new Kvm(nc).open(RECORDS_BUCKET, { allow_direct: info.config.allow_direct === true });
}

/**
 * nats-server's answers to a stream create that lost a race with another process creating the
 * same stream (a gateway and a worker starting at once against a fresh server): "stream name
 * already in use" while the other's create completes, or "subjects overlap with an existing
 * stream" (seen on nats-server 2.9 about once in 60 racing KV creates).
 */
const LOST_CREATE_RACE: ReadonlySet<number> = new Set([10058, 10065]);

function lostCreateRace(err: unknown): boolean {
  return err instanceof JetStreamApiError && LOST_CREATE_RACE.has(err.code);
}

/**
 * Adds the stream `stream` describes when none of its name exists. Returns the stream's info and
 * whether this call made it. A create that lost the race to another process takes the stream that
 * process made; any other refusal is thrown.
 */
async function addStreamIfMissing(jsm: JetStreamManager, stream: Partial<StreamConfig> & { name: string }): Promise<{ info: StreamInfo; created: boolean }> {
  const { name } = stream;
  const existing = await infoOrUndefined(() => jsm.streams.info(name), JetStreamApiCodes.StreamNotFound);
  if (existing) return { info: existing, created: false };
  try {
    return { info: await jsm.streams.add(stream), created: true };
  } catch (err) {
    if (!lostCreateRace(err)) throw err;
    const made = await infoOrUndefined(() => jsm.streams.info(name), JetStreamApiCodes.StreamNotFound);
    if (!made) throw err;
    return { info: made, created: false };
  }
}

/**
 * Creates KV bucket `bucket` if missing and opens it; a create that lost the race to another
 * process opens that one's. Handed out once its direct get answers (see direct-get-probe.ts).
 */
async function createBucket(nc: NatsConnection, bucket: string, opts: Parameters<Kvm['create']>[1]): Promise<KV> {
  let kv: KV;
  try {
    kv = await new Kvm(nc).create(bucket, opts);
  } catch (err) {
    if (!lostCreateRace(err)) throw err;
    // The bucket's stream exists now: create() finds it and only opens it.
    kv = await new Kvm(nc).create(bucket, opts);
  }
  await untilDirectGetAnswers(nc, bucket);
  return kv;
}

/** The info, or undefined when JetStream answers "not found" with `notFoundCode`. */
export async function infoOrUndefined<T>(get: () => Promise<T>, notFoundCode: number): Promise<T | undefined> {
  try {
    return await get();
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === notFoundCode) return undefined;
    throw err;
  }
}
