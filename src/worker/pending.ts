import type { JetStreamManager } from '@nats-io/jetstream';
import type { Config } from '../config/index.js';
import { queuesServed } from '../queue/queues.js';
import { queueSpecFor } from '../queue/topology.js';
import type { Logger } from '../telemetry/logger.js';
import type { WorkerMetrics } from '../telemetry/metrics.js';

/** How often the pending-messages gauge is refreshed from the consumers' info. */
const PENDING_POLL_MS = 5_000;

/** JetStream knows what waits in a queue; ask it, rather than count what passes this one worker. */
export function pollPending(config: Config, jsm: JetStreamManager, metrics: WorkerMetrics, logger: Logger): NodeJS.Timeout {
  const poll = async (): Promise<void> => {
    for (const q of queuesServed(config)) {
      const spec = queueSpecFor(config, q.name);
      try {
        const info = await jsm.consumers.info(spec.stream, spec.durable);
        metrics.pending.set({ queue_name: q.name, function_name: '' }, info.num_pending + info.num_ack_pending);
      } catch (err) {
        logger.debug({ err, queue: q.name }, 'could not read consumer info for the pending gauge');
      }
    }
  };
  void poll();
  const timer = setInterval(() => void poll(), PENDING_POLL_MS);
  timer.unref();
  return timer;
}
