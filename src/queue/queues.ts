import { QUEUE_NAME, type Config, type QueueServed } from '../config/index.js';
import type { QueueSpec } from './topology.js';

/** The annotation that routes a function's invocations to a named queue (OpenFaaS Pro). */
export const QUEUE_ANNOTATION = 'com.openfaas.queue';


export function isQueueName(name: string): boolean {
  return QUEUE_NAME.test(name);
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

/** The queues a worker serves: the configured list, or the default queue with the top-level limits. */
export function queuesServed(config: Config): readonly QueueServed[] {
  if (config.worker.queues.length > 0) return config.worker.queues;
  return [{ name: config.queue.stream, maxInflight: config.worker.maxInflight, upstreamTimeoutMs: config.worker.upstreamTimeoutMs }];
}
