import { AckPolicy, DiscardPolicy, type ConsumerInfo, type StreamInfo } from '@nats-io/jetstream';
import { millis } from '@nats-io/nats-core';
import type { QueueSpec } from './topology.js';

/**
 * Whether a queue's stream or consumer that already exists (an operator's, or an older asyncfn's)
 * can hold invocations safely. Pure: topology.ts reads the info and acts on the findings.
 */
export interface Findings {
  /** Reasons it cannot be used: startup stops with an IncompatibleQueueError. */
  problems: string[];
  /** Reasons to worry that do not stop startup: logged. */
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

/** The first nats-server release that sends a redelivery that met only ended pull requests (2.10.16, 2.11.0). */
const REDELIVERY_FIX = [2, 10, 16] as const;

/**
 * What the worker should know about the nats-server it reached (`version`, as its INFO says it).
 * Before 2.10.16, a retry's redelivery that meets only ended pull requests (a lane's idle long
 * poll, ended to give its slots to a busy function) is counted and not sent until ack_wait: the
 * retry comes late. Attempts stay right (the attempt ledger), so it is a warning.
 */
export function checkServer(version: string | undefined): string[] {
  if (!losesRedeliveries(version)) return [];
  return [
    `nats-server ${version} counts a retry that meets only ended pull requests and holds it until ack_wait (fixed in 2.10.16): the worker clears the requests it ends, and attempts are counted right; upgrade nats-server`,
  ];
}

/**
 * Whether nats-server `version` (as its INFO says it) loses a redelivery that meets only pull
 * requests without interest (their client ended them): counted, then held until ack_wait. False
 * when the version cannot be read.
 */
export function losesRedeliveries(version: string | undefined): boolean {
  const parts = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? '');
  if (!parts) return false;
  const [major, minor, patch] = parts.slice(1).map(Number) as [number, number, number];
  if (major !== REDELIVERY_FIX[0]) return major < REDELIVERY_FIX[0];
  if (minor !== REDELIVERY_FIX[1]) return minor < REDELIVERY_FIX[1];
  return patch < REDELIVERY_FIX[2];
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
