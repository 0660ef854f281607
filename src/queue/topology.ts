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
  type StreamInfo,
} from '@nats-io/jetstream';
import { millis, nanos } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { IncompatibleQueueError } from './errors.js';

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
 * Creates the stream if missing; otherwise checks that the operator's stream can hold invocations
 * safely. Used by the gateway and the worker, so either may start first.
 */
export async function ensureStream(jsm: JetStreamManager, spec: QueueSpec, logger: Logger): Promise<StreamInfo> {
  const existing = await infoOrUndefined(() => jsm.streams.info(spec.stream), JetStreamApiCodes.StreamNotFound);
  if (!existing) {
    const info = await jsm.streams.add({
      name: spec.stream,
      subjects: [spec.subject],
      // Work-queue retention: an acked invocation is removed, so the stream is exactly the backlog.
      retention: RetentionPolicy.Workqueue,
      storage: spec.storage === 'memory' ? StorageType.Memory : StorageType.File,
      num_replicas: spec.replicas,
      // A full stream must refuse new work (the gateway answers 503), never drop accepted work.
      discard: DiscardPolicy.New,
      duplicate_window: nanos(spec.duplicateWindowMs ?? 120_000),
    });
    logger.info({ stream: spec.stream, replicas: spec.replicas, storage: spec.storage }, 'created stream');
    return info;
  }
  const { problems, warnings } = checkStream(existing, spec);
  for (const warning of warnings) logger.warn({ stream: spec.stream }, warning);
  if (problems.length > 0) throw new IncompatibleQueueError(`stream "${spec.stream}"`, problems);
  return widenDuplicateWindow(jsm, existing, spec, logger);
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
export async function ensureConsumer(
  jsm: JetStreamManager,
  spec: QueueSpec,
  maxInflight: number,
  logger: Logger,
): Promise<ConsumerInfo> {
  const existing = await infoOrUndefined(
    () => jsm.consumers.info(spec.stream, spec.durable),
    JetStreamApiCodes.ConsumerNotFound,
  );
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

interface Findings {
  problems: string[];
  warnings: string[];
}

export function checkStream(info: StreamInfo, spec: QueueSpec): Findings {
  const { config } = info;
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!(config.subjects ?? []).some((s) => subjectMatches(s, spec.subject))) {
    problems.push(`its subjects ${JSON.stringify(config.subjects ?? [])} do not include "${spec.subject}"`);
  }
  const limited = config.max_msgs > 0 || config.max_bytes > 0 || config.max_age > 0;
  if (config.discard === DiscardPolicy.Old && limited) {
    warnings.push('discard policy "old" with limits set: JetStream may drop accepted invocations; use discard "new"');
  }
  if (config.num_replicas !== spec.replicas) {
    warnings.push(`has ${config.num_replicas} replicas, stream_replication asks for ${spec.replicas}; using it as it is`);
  }
  return { problems, warnings };
}

export function checkConsumer(info: ConsumerInfo, spec: QueueSpec, maxInflight: number): Findings {
  const { config } = info;
  const problems: string[] = [];
  const warnings: string[] = [];
  if (config.ack_policy !== AckPolicy.Explicit) problems.push(`ack_policy is "${config.ack_policy}", must be "explicit"`);
  if (config.deliver_subject) problems.push('it is a push consumer; asyncfn needs a pull consumer');
  if (config.filter_subject && !subjectMatches(config.filter_subject, spec.subject)) {
    problems.push(`filter_subject "${config.filter_subject}" does not match "${spec.subject}"`);
  }
  const maxAckPending = config.max_ack_pending ?? -1;
  if (maxAckPending !== -1 && maxAckPending < maxInflight) {
    problems.push(`max_ack_pending ${maxAckPending} is below max_inflight ${maxInflight}`);
  }
  if (config.max_deliver !== undefined && config.max_deliver > 0) {
    warnings.push(`max_deliver is ${config.max_deliver}: JetStream stops redelivering after that, use -1`);
  }
  const ackWaitMs = millis(config.ack_wait ?? 0);
  if (ackWaitMs !== spec.ackWaitMs) {
    warnings.push(`ack_wait is ${ackWaitMs}ms, ack_wait asks for ${spec.ackWaitMs}ms; using the consumer's`);
  }
  return { problems, warnings };
}

/** NATS subject matching with `*` and `>` wildcards in the pattern. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
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
