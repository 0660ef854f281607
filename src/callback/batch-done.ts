import type { JetStreamClient } from '@nats-io/jetstream';
import type { CallbackHandOff } from '../../actors/invocation.types.js';
import { finalCount, type BatchFinalCounts } from '../queue/batch-events.js';
import type { BatchRecord, BatchStore } from '../status/batches.js';
import { handOffCallback } from './stored.js';

/** What completing a batch needs; the worker, the gateway and tests give their own. */
export interface BatchCompletionPorts {
  readonly batches: Pick<BatchStore, 'get' | 'put'>;
  /** The batch's final items by state (readBatchCounts). */
  readonly counts: (batchId: string) => Promise<BatchFinalCounts>;
  /** Stores the batch callback in the durable callback stream (handOffCallback), PubAck awaited. */
  readonly handOff: (queue: string, request: CallbackHandOff, msgId: string) => Promise<void>;
  /** Wall clock, unix ms. */
  readonly now: () => number;
}

/** How a completion check ended. */
export type BatchCompletion = 'unknown' | 'notYet' | 'completed' | 'alreadyDone';

/** The batch callback's JSON body. */
export interface BatchCallbackBody extends BatchFinalCounts {
  readonly batchId: string;
  readonly function: string;
  readonly namespace: string;
  /** Items accepted: the sum of the four counts. */
  readonly total: number;
}

const encoder = new TextEncoder();

/**
 * The batch callback as a callback hand-off: the durable retrier posts it with the usual callback
 * headers (signed when `callback_signing` is on), `X-Call-Id` and `X-Batch-Id` both the batch id,
 * `X-Function-Status: 200`, and the counts as JSON.
 */
export function batchCallbackOf(record: BatchRecord, counts: BatchFinalCounts, nowMs: number): CallbackHandOff {
  const body: BatchCallbackBody = { batchId: record.batchId, function: record.function, namespace: record.namespace, total: record.accepted, ...counts };
  const data = encoder.encode(JSON.stringify(body));
  return {
    invocation: {
      callId: record.batchId,
      batchId: record.batchId,
      functionName: record.function,
      namespace: record.namespace,
      method: 'POST',
      path: '',
      query: '',
      headers: [],
      body: data,
      callbackUrl: record.callbackUrl,
      enqueuedAtMs: record.createdAtMs,
    },
    outcome: { status: 200, contentType: 'application/json', body: data, startedAtMs: record.createdAtMs, durationMs: Math.max(0, nowMs - record.createdAtMs) },
    attempt: 1,
    maxAttempts: 1,
    error: 'batch callback',
  };
}

/** `Nats-Msg-Id` of a batch's callback: two processes seeing the batch done at once store it once. */
export function batchCallbackMsgId(batchId: string): string {
  return `batch-done-${batchId}`;
}

/**
 * Checks whether every accepted item of the batch is final and, if so, hands off the batch
 * callback (deduplicated by its message id) and then writes `done`. Safe to call from any process
 * any number of times: the callback goes out once, and a process that dies between the hand-off and
 * the write leaves the next caller to repeat both (the hand-off is then a duplicate within the
 * callback stream's window).
 */
export async function completeBatchIfDone(ports: BatchCompletionPorts, batchId: string, known?: BatchRecord): Promise<BatchCompletion> {
  const record = known ?? (await ports.batches.get(batchId));
  if (!record) return 'unknown';
  if (record.state === 'done') return 'alreadyDone';
  if (record.state !== 'accepted') return 'notYet';
  const counts = await ports.counts(batchId);
  if (finalCount(counts) < record.accepted) return 'notYet';
  const nowMs = ports.now();
  // A batch refused before its first item has nothing to report.
  if (record.callbackUrl !== undefined && record.accepted > 0) await ports.handOff(record.queue, batchCallbackOf(record, counts, nowMs), batchCallbackMsgId(batchId));
  // Read again: a DELETE may have written the record meanwhile; `done` keeps what it wrote.
  const latest = (await ports.batches.get(batchId)) ?? record;
  if (latest.state !== 'done') await ports.batches.put({ ...latest, state: 'done', doneAtMs: nowMs });
  return 'completed';
}

/** The ports of {@link completeBatchIfDone} on a JetStream client. */
export function batchCompletionPorts(
  js: JetStreamClient,
  batches: BatchStore,
  counts: BatchCompletionPorts['counts'],
  now: () => number = Date.now,
): BatchCompletionPorts {
  return { batches, counts, handOff: (queue, request, msgId) => handOffCallback(js, queue, request, { msgId }), now };
}
