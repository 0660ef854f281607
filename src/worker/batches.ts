import type { JetStreamClient } from '@nats-io/jetstream';
import type { BatchItemEnd } from '../../actors/invocation.types.js';
import { completeBatchIfDone, type BatchCompletionPorts } from '../callback/batch-done.js';
import { publishBatchEvent, type BatchFinalState } from '../queue/batch-events.js';
import type { BatchRecord } from '../status/batches.js';
import type { Logger } from '../telemetry/logger.js';
import type { BatchMetrics } from '../telemetry/metrics.js';

export interface BatchItemCounterDeps {
  readonly js: JetStreamClient;
  readonly completion: BatchCompletionPorts;
  readonly metrics: BatchMetrics;
  readonly logger: Logger;
  /** Pause before the n-th retry of an event's publish, ms; default 250 ms doubling. */
  readonly retryDelayMs?: (attempt: number) => number;
}

/** Publishes of one event before the count fails (and the item stays unacked). */
const EVENT_ATTEMPTS = 4;
/** Batch records remembered once fully accepted (their accepted count and callback never change). */
const RECORD_CACHE_SIZE = 1_000;

/**
 * The machine's `countBatchItem` effect, shared by every queue of a worker: stores the item's
 * event (deduplicated by call id, src/queue/batch-events.ts), then completes the batch if that was
 * its last item. Both happen before the item's ack; either failing rejects, so the item is
 * redelivered and counted (at most once) again.
 */
export function batchItemCounter(deps: BatchItemCounterDeps): (item: BatchItemEnd) => Promise<void> {
  const retryDelayMs = deps.retryDelayMs ?? ((attempt: number) => 250 * 2 ** (attempt - 1));
  const known = new Map<string, BatchRecord>();
  const remember = (record: BatchRecord): void => {
    if (record.state === 'accepting') return;
    known.delete(record.batchId);
    known.set(record.batchId, record);
    if (known.size > RECORD_CACHE_SIZE) known.delete(known.keys().next().value!);
  };
  const completion: BatchCompletionPorts = {
    ...deps.completion,
    batches: {
      get: async (batchId) => {
        const record = await deps.completion.batches.get(batchId);
        if (record) remember(record);
        return record;
      },
      put: async (record) => {
        await deps.completion.batches.put(record);
        remember(record);
      },
    },
  };
  return async (item) => {
    const { batchId, callId, functionName } = item.invocation;
    if (batchId === undefined) return;
    const state: BatchFinalState = item.state;
    for (let attempt = 1; ; attempt++) {
      try {
        await publishBatchEvent(deps.js, { batchId, callId, state, status: item.status });
        break;
      } catch (err) {
        if (attempt >= EVENT_ATTEMPTS) {
          deps.logger.warn({ err, callId, batchId }, 'could not count a batch item; it stays unacked and is redelivered');
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs(attempt)).unref());
      }
    }
    const cached = known.get(batchId);
    if (cached?.state === 'done') return;
    const outcome = await completeBatchIfDone(completion, batchId, cached);
    if (outcome === 'completed') {
      deps.metrics.completed.inc({ function_name: deps.metrics.functionLabel(functionName) });
      deps.logger.info({ batchId, function: functionName }, 'batch done');
    }
  };
}
