/**
 * The batch use case behind `POST /async-batch/<name>`, apart from HTTP: resolve the function once,
 * claim the batch's idempotency key, write the batch record, then publish each item as it is read
 * (a bounded window of publishes in flight, each item with a deterministic call id and that id as
 * its `Nats-Msg-Id`), and end with the record saying exactly how many items are stored, however
 * the request ended: read whole, stopped by a bad item or a limit, or cut off by the client.
 */
import type { Logger } from 'pino';
import { FunctionNotFoundError, isAsyncFnError, type AsyncFnError } from '../errors.js';
import type { FunctionRef, FunctionResolver } from '../functions/index.js';
import { BatchEmptyError, BatchItemInvalidError, BatchTooLargeError } from '../errors.js';
import { completeBatchIfDone, type BatchCompletionPorts } from '../callback/batch-done.js';
import { confirmWithin, deadlineAfter } from '../queue/deadline.js';
import { QueueUnavailableError } from '../queue/errors.js';
import type { InvocationPublisher } from '../queue/publisher.js';
import { batchCallId, type BatchRecord, type BatchStore } from '../status/batches.js';
import type { IdempotencyClaim, IdempotencyClaims } from '../status/idempotency.js';
import type { RecordStore } from '../status/records.js';
import type { BatchMetrics } from '../telemetry/metrics.js';
import type { BatchItem } from './batch-items.js';
import { queuedRecordOf } from './enqueue.js';
import type { QueueRouter } from './queue-router.js';

/** Publishes in flight at once per batch: enough to keep JetStream busy (TOOLCHAIN.md: ~30k msg/s at 256), bounded memory. */
export const BATCH_PUBLISH_WINDOW = 256;
/** Publishes of one item whose outcome was unknown (a time-out): the same Nats-Msg-Id makes a repeat harmless. */
const ITEM_PUBLISH_ATTEMPTS = 3;
/** Writes of the final batch record before giving up. */
const RECORD_ATTEMPTS = 5;

export interface BatchPorts {
  readonly resolver: Pick<FunctionResolver, 'resolve'>;
  readonly checkCallback: (url: URL) => Promise<AsyncFnError | undefined>;
  readonly router: Pick<QueueRouter, 'route'>;
  readonly records: Pick<RecordStore, 'createUnconfirmed'>;
  readonly idempotency: IdempotencyClaims;
  readonly publisher: InvocationPublisher;
  readonly batches: BatchStore;
  readonly completion: BatchCompletionPorts;
  readonly newBatchId: () => string;
  readonly logger: Pick<Logger, 'debug' | 'warn'>;
  readonly metrics: BatchMetrics;
  /** Longest wait for each JetStream round trip (`publish_timeout`), ms. */
  readonly publishTimeoutMs: number;
}

export interface BatchRequest {
  readonly ref: FunctionRef;
  readonly rawName: string;
  /** The batch's X-Callback-Url: called once when every item is final. */
  readonly callbackUrl: string | undefined;
  readonly idempotencyKey: string | undefined;
  /** Unix ms the request arrived; every item's enqueue time. */
  readonly enqueuedAtMs: number;
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
  /** Whether the client has gone (its request stream failing then is no bug). */
  readonly clientGone: () => boolean;
}

/**
 * `refused`: nothing was stored (no function, a refused callback, no item at all, JetStream down
 * before the first item). `duplicate`: a repeat of an Idempotency-Key, with the first batch's
 * record. `accepted`: every item stored. `stopped`: the items before `error` are stored, the rest
 * not read. `interrupted`: the client left; the record keeps what was stored.
 */
export type BatchResult =
  | { readonly outcome: 'refused'; readonly error: AsyncFnError }
  | { readonly outcome: 'duplicate'; readonly batchId: string; readonly record: BatchRecord | undefined }
  | { readonly outcome: 'accepted'; readonly record: BatchRecord }
  | { readonly outcome: 'stopped'; readonly record: BatchRecord; readonly error: AsyncFnError; readonly notStored: readonly number[] }
  | { readonly outcome: 'interrupted'; readonly record: BatchRecord };

/**
 * Reads `items` to their end (or the first problem) and stores each as one invocation. Resolves
 * once every publish in flight has its PubAck (or failed) and the batch record says how many are
 * stored; rejects only on a bug.
 */
export async function submitBatch(ports: BatchPorts, req: BatchRequest, items: AsyncIterable<BatchItem>): Promise<BatchResult> {
  const { ref } = req;
  const [fn, refused] = await Promise.all([ports.resolver.resolve(ref), req.callbackUrl === undefined ? undefined : ports.checkCallback(new URL(req.callbackUrl))]);
  if (refused) return { outcome: 'refused', error: refused };
  if (!fn) return { outcome: 'refused', error: new FunctionNotFoundError(req.rawName) };
  let batchId = ports.newBatchId();
  const deadline = deadlineAfter(ports.publishTimeoutMs, performance.now());
  let route;
  /** This request's claim of its Idempotency-Key, given back when it stores nothing (see `releaseUnused`). */
  let claim: IdempotencyClaim | undefined;
  try {
    route = await confirmWithin('the queue', deadline, () => ports.router.route(fn, req.enqueuedAtMs));
    if (req.idempotencyKey !== undefined) {
      const key = req.idempotencyKey;
      claim = await confirmWithin('the idempotency key', deadline, () => ports.idempotency.claim(`batch:${ref.namespace}/${ref.name}`, key, batchId));
      if (!claim.first) {
        batchId = claim.callId;
        return { outcome: 'duplicate', batchId, record: await confirmWithin('the batch record', deadline, () => ports.batches.get(batchId)) };
      }
    }
  } catch (err) {
    if (isAsyncFnError(err)) return { outcome: 'refused', error: err };
    throw err;
  }
  let record: BatchRecord = {
    batchId,
    function: ref.name,
    namespace: ref.namespace,
    queue: route.queue,
    state: 'accepting',
    accepted: 0,
    createdAtMs: req.enqueuedAtMs,
    ...(req.callbackUrl === undefined ? {} : { callbackUrl: req.callbackUrl }),
  };
  /** An item's publish timed out: JetStream may have it. */
  let maybeStored = false;
  /**
   * A batch that stored no item gives its key back, as a refused single request does: its
   * corrected resend is a new batch, not a replay of this one's refusal. Not when an item may be
   * stored after all: a resend must answer this batch.
   */
  const releaseUnused = async (): Promise<void> => {
    if (claim === undefined || !claim.first || maybeStored) return;
    await ports.idempotency.release(claim).catch((e: unknown) => ports.logger.debug({ err: e, batchId }, 'could not release an idempotency key'));
  };
  try {
    await confirmWithin('the batch record', deadline, () => ports.batches.put(record));
  } catch (err) {
    if (isAsyncFnError(err)) {
      await releaseUnused();
      return { outcome: 'refused', error: err };
    }
    throw err;
  }

  const callbackChecks = new Map<string, Promise<AsyncFnError | undefined>>();
  /** Per-item callbacks pass the same guard as the batch's, once per origin. */
  const checkItemCallback = async (item: BatchItem): Promise<void> => {
    if (item.callbackUrl === undefined) return;
    const url = new URL(item.callbackUrl);
    let check = callbackChecks.get(url.origin);
    if (!check) callbackChecks.set(url.origin, (check = ports.checkCallback(url)));
    const refusal = await check;
    if (refusal) throw new BatchItemInvalidError(item.index, item.line, refusal.message);
  };

  const publishItem = async (item: BatchItem): Promise<void> => {
    const callId = batchCallId(batchId, item.index);
    const invocation = {
      callId,
      batchId,
      functionName: ref.name,
      namespace: ref.namespace,
      method: 'POST',
      path: item.path,
      query: item.query,
      headers: item.headers,
      body: item.body,
      callbackUrl: item.callbackUrl,
      enqueuedAtMs: req.enqueuedAtMs,
      expiresAtMs: route.expiresAtMs,
      msgId: callId,
      traceparent: req.traceparent,
      tracestate: req.tracestate,
    };
    const queued = queuedRecordOf({ callId, batchId, functionName: ref.name, namespace: ref.namespace, queue: route.queue, enqueuedAtMs: req.enqueuedAtMs });
    for (let attempt = 1; ; attempt++) {
      try {
        await ports.publisher.publish(route.subject, invocation, ports.publishTimeoutMs, {
          beforeSend: attempt === 1 ? () => ports.records.createUnconfirmed(queued) : undefined,
          destination: route.queueSubject,
        });
        return;
      } catch (err) {
        const unknown = err instanceof QueueUnavailableError && err.outcomeUnknown;
        if (!unknown || attempt >= ITEM_PUBLISH_ATTEMPTS) throw err;
      }
    }
  };

  let stored = 0;
  let failure: AsyncFnError | undefined;
  const notStored: number[] = [];
  let stop: AsyncFnError | undefined;
  let interrupted = false;
  const inflight = new Set<Promise<void>>();
  try {
    for await (const item of items) {
      if (failure) break;
      await checkItemCallback(item);
      while (inflight.size >= BATCH_PUBLISH_WINDOW) await Promise.race(inflight);
      if (failure) break;
      const p: Promise<void> = publishItem(item).then(
        () => {
          stored++;
        },
        (err: unknown) => {
          notStored.push(item.index);
          if (err instanceof QueueUnavailableError && err.outcomeUnknown) maybeStored = true;
          failure ??= isAsyncFnError(err) ? err : new QueueUnavailableError(String(err));
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
  } catch (err) {
    if (isAsyncFnError(err)) stop = err;
    else if (req.clientGone()) interrupted = true;
    else {
      await Promise.all(inflight);
      throw err;
    }
  }
  await Promise.all(inflight);
  if (!failure && !stop && !interrupted && stored === 0) stop = new BatchEmptyError();
  const function_name = ports.metrics.functionLabel(ref.name);
  ports.metrics.items.inc({ function_name, outcome: 'accepted' }, stored);
  if (notStored.length > 0) ports.metrics.items.inc({ function_name, outcome: 'failed' }, notStored.length);
  if (stop && isItemError(stop)) ports.metrics.items.inc({ function_name, outcome: 'refused' });

  const error = failure ?? stop;
  const stopped: BatchRecord['stopped'] = interrupted
    ? { code: 'CLIENT_DISCONNECTED', reason: 'the client disconnected before the end of the batch' }
    : error
      ? {
          code: error.code,
          reason: error.message,
          ...(isItemError(error) ? { line: error.line, index: error.index } : {}),
        }
      : undefined;
  record = { ...record, state: 'accepted', accepted: stored, acceptedAtMs: Date.now(), ...(stopped ? { stopped } : {}) };
  await writeFinalRecord(ports, record);
  if (stored === 0) await releaseUnused();
  // Items may all have ended before the batch was accepted: then nobody else sees it done.
  completeBatchIfDone(ports.completion, batchId, record).then(
    (outcome) => {
      if (outcome === 'completed') ports.metrics.completed.inc({ function_name: ports.metrics.functionLabel(ref.name) });
    },
    (err: unknown) => ports.logger.warn({ err, batchId }, 'could not check whether the batch is done; a status read or the next item does'),
  );
  if (interrupted) return { outcome: 'interrupted', record };
  if (error) return { outcome: 'stopped', record, error, notStored: notStored.sort((a, b) => a - b) };
  return { outcome: 'accepted', record };
}

/** A refusal of one item (invalid, too large): it names the item. */
export function isItemError(error: AsyncFnError): error is BatchItemInvalidError | BatchTooLargeError {
  return error instanceof BatchItemInvalidError || error instanceof BatchTooLargeError;
}

/** The batch's final count must be stored: what it says is what the batch callback waits for. */
async function writeFinalRecord(ports: BatchPorts, record: BatchRecord): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ports.batches.put(record);
      return;
    } catch (err) {
      if (attempt >= RECORD_ATTEMPTS) {
        ports.logger.warn({ err, batchId: record.batchId }, 'could not write the final batch record');
        throw new QueueUnavailableError('the batch record could not be written', { cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt).unref());
    }
  }
}
