import type { Config, QueueServed } from '../config/index.js';
import { isQueueName } from '../config/queue-name.js';

/** The annotation that routes a function's invocations to a named queue (OpenFaaS Pro). */
export const QUEUE_ANNOTATION = 'com.openfaas.queue';

/** Whether a name can name a queue (src/config/queue-name.ts: a reserved one cannot). */
export { isQueueName };

/** The queues a worker serves: the configured list, or the default queue with the top-level limits. */
export function queuesServed(config: Config): readonly QueueServed[] {
  if (config.worker.queues.length > 0) return config.worker.queues;
  return [{ name: config.queue.stream, maxInflight: config.worker.maxInflight, upstreamTimeoutMs: config.worker.upstreamTimeoutMs }];
}
