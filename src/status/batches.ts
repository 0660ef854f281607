import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { finalCount, type BatchFinalCounts } from '../queue/batch-events.js';
import { BATCHES_BUCKET } from '../queue/topology.js';
import { keySubscriber, waitForKey } from './key-wait.js';

/*
 * Batch records live in the batches bucket (BATCHES_BUCKET in src/queue/topology.ts), keyed by
 * batch id. The gateway writes `accepting` before the first item and `accepted` with the count of
 * stored items once the request is over (however it ended); whoever sees every accepted item final
 * (a worker, the gateway, a status read) hands off the batch callback and writes `done`.
 */

/**
 * `accepting`: the request is still being read, items are being stored. `accepted`: every item the
 * batch will ever have is stored (`accepted` of them). `done`: every accepted item is final, the
 * batch callback (if any) is handed off.
 */
export type BatchState = 'accepting' | 'accepted' | 'done';

export interface BatchRecord {
  readonly batchId: string;
  readonly function: string;
  readonly namespace: string;
  readonly queue: string;
  readonly state: BatchState;
  /** Items stored (PubAck received) so far; final once `state` is past `accepting`. */
  readonly accepted: number;
  /** Unix ms the batch request arrived. */
  readonly createdAtMs: number;
  /** Unix ms every item was stored (the request ended). */
  readonly acceptedAtMs?: number | undefined;
  /** Unix ms every accepted item was final. */
  readonly doneAtMs?: number | undefined;
  /** The batch-level X-Callback-Url: called once, when the batch is done. */
  readonly callbackUrl?: string | undefined;
  /** Why the request ended before its last item (a bad item, a limit, the client left); absent when it was read whole. */
  readonly stopped?: { readonly code: string; readonly reason: string; readonly line?: number | undefined; readonly index?: number | undefined } | undefined;
  /** Unix ms a DELETE asked to cancel the remaining items. */
  readonly cancelRequestedAtMs?: number | undefined;
}

/** Batch records on the batches bucket `kv`. */
export interface BatchStore {
  get(batchId: string): Promise<BatchRecord | undefined>;
  /** Writes the record and resolves once JetStream stored it. */
  put(record: BatchRecord): Promise<void>;
  /**
   * The record once `done`, or as it is after `timeoutMs` (a core NATS subscription to the key's
   * writes, see key-wait.ts: nothing polls, no JetStream consumer); aborting `signal` rejects with its reason.
   */
  waitUntilDone(batchId: string, timeoutMs: number, signal?: AbortSignal): Promise<BatchRecord | undefined>;
}

/** The batch records on the batches bucket `kv` (BATCHES_BUCKET); `nc`, its connection, carries the waits' subscriptions. */
export function batchStore(kv: KV, nc: Pick<NatsConnection, 'subscribe'>): BatchStore {
  const writes = keySubscriber(nc, BATCHES_BUCKET);
  const get = async (batchId: string): Promise<BatchRecord | undefined> => {
    const entry = await kv.get(batchId);
    return entry && entry.operation === 'PUT' && entry.length > 0 ? entry.json<BatchRecord>() : undefined;
  };
  return {
    get,
    async put(record) {
      await kv.put(record.batchId, JSON.stringify(record));
    },
    async waitUntilDone(batchId, timeoutMs, signal) {
      signal?.throwIfAborted();
      return waitForKey({ key: batchId, read: () => get(batchId), subscribe: writes, decode: decodeBatch, isDone: (r) => r?.state === 'done' }, timeoutMs, signal);
    },
  };
}

/** A batch record as written on its key's subject (undefined for a delete or purge). */
function decodeBatch(value: Uint8Array | undefined): BatchRecord | undefined {
  return value === undefined ? undefined : (JSON.parse(Buffer.from(value).toString('utf8')) as BatchRecord);
}

/** `GET /async-batch/<batch-id>` and `asyncfn batch status`: the record and its counts. */
export interface BatchStatus {
  readonly batchId: string;
  readonly function: string;
  readonly namespace: string;
  readonly queue: string;
  readonly state: BatchState;
  /** Items stored. */
  readonly accepted: number;
  /** Items by state; `pending` are queued, running or waiting for a retry. */
  readonly counts: BatchFinalCounts & { readonly pending: number };
  /** Every accepted item is final (and no more will be accepted). */
  readonly done: boolean;
  /** Final items over accepted ones, 0..1 (0 for an empty batch still accepting). */
  readonly progress: number;
  readonly createdAtMs: number;
  readonly acceptedAtMs?: number | undefined;
  readonly doneAtMs?: number | undefined;
  readonly stopped?: BatchRecord['stopped'];
  readonly cancelRequestedAtMs?: number | undefined;
}

/** Pure: the status of a batch from its record and its final counts. */
export function batchStatusOf(record: BatchRecord, counts: BatchFinalCounts): BatchStatus {
  const final = Math.min(finalCount(counts), record.accepted);
  const done = record.state === 'done' || (record.state === 'accepted' && final >= record.accepted);
  return {
    batchId: record.batchId,
    function: record.function,
    namespace: record.namespace,
    queue: record.queue,
    state: record.state,
    accepted: record.accepted,
    counts: { pending: Math.max(0, record.accepted - finalCount(counts)), ...counts },
    done,
    progress: record.accepted === 0 ? (done ? 1 : 0) : final / record.accepted,
    createdAtMs: record.createdAtMs,
    ...(record.acceptedAtMs === undefined ? {} : { acceptedAtMs: record.acceptedAtMs }),
    ...(record.doneAtMs === undefined ? {} : { doneAtMs: record.doneAtMs }),
    ...(record.stopped === undefined ? {} : { stopped: record.stopped }),
    ...(record.cancelRequestedAtMs === undefined ? {} : { cancelRequestedAtMs: record.cancelRequestedAtMs }),
  };
}

/** The call id of item `index` (0-based, in the order sent) of a batch: a valid record key. */
export function batchCallId(batchId: string, index: number): string {
  return `${batchId}-${index}`;
}
