import type { KV } from '@nats-io/kv';
import { JetStreamApiError } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { openKvBucket, RECORDS_BUCKET, type KvBucketOptions } from '../queue/topology.js';
import { recordOf, waitForFinal } from './wait.js';

/** Where an invocation stands. */
export type InvocationState = 'scheduled' | 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled' | 'deadLettered';

/** States after which nothing more happens to an invocation. */
export const FINAL_STATES: ReadonlySet<InvocationState> = new Set(['succeeded', 'failed', 'cancelled', 'deadLettered']);

/** What asyncfn knows about one invocation (the status API of #7 serves it). */
export interface InvocationRecord {
  readonly callId: string;
  /**
   * The invocation whose call id the caller sent as X-Call-Id when that id already named an
   * invocation (a callback chained into /async-function/): this one got a fresh call id instead.
   */
  readonly parentCallId?: string | undefined;
  /** The batch this invocation is an item of (`POST /async-batch/<name>`). */
  readonly batchId?: string | undefined;
  readonly function: string;
  readonly namespace: string;
  readonly queue: string;
  readonly state: InvocationState;
  /** Attempts started so far. */
  readonly attempts: number;
  /** Last function status, when the function answered. */
  readonly status?: number | undefined;
  readonly enqueuedAtMs: number;
  /** Unix ms before which a delayed invocation does not run (state "scheduled" until then). */
  readonly notBeforeMs?: number | undefined;
  readonly startedAtMs?: number | undefined;
  readonly finishedAtMs?: number | undefined;
  /** Duration of the last function call, ms. */
  readonly durationMs?: number | undefined;
  readonly error?: string | undefined;
  /** Set when the caller asked for the result: whether it is stored, and what it is. */
  readonly result?: StoredResultInfo | undefined;
}

/** What the record says about a result kept for `GET /async-function/<call-id>/result`. */
export interface StoredResultInfo {
  /** false when it could not be kept: too large (`result_max_size`) or the write failed. */
  readonly stored: boolean;
  readonly status: number;
  readonly contentType?: string | undefined;
  readonly bytes: number;
  /** Why it is not stored. */
  readonly reason?: string | undefined;
}

/** Invocation records in a JetStream KV bucket; last writer wins. */
export interface RecordStore {
  get(callId: string): Promise<InvocationRecord | undefined>;
  /**
   * Writes the record only if the call id has none (a worker may already have written "running",
   * or a replayed invocation keeps its last record until the worker updates it). Resolves true
   * when it wrote it, false when the call id already had a record (one atomic KV create).
   */
  createIfAbsent(record: InvocationRecord): Promise<boolean>;
  /**
   * `createIfAbsent` without waiting for anything: one message on the bucket's subject with
   * `Nats-Expected-Last-Subject-Sequence: 0`, no reply subject. JetStream stores it only when the
   * key has never been written (a worker's "running" or a final record is never overwritten) and
   * answers nobody. For the gateway's `queued` record, which rides in the same socket write as
   * the invocation, ahead of it: the invocation's PubAck is what makes the 202 durable.
   */
  createUnconfirmed(record: InvocationRecord): void;
  /**
   * Writes the record without waiting for JetStream's ack: one message on the bucket's subject,
   * no request round trip. For the worker's state updates, which are informational (the
   * invocation itself is durable) and many (one or two per invocation).
   */
  putUnconfirmed(record: InvocationRecord): void;
  /** Writes the record and resolves once JetStream stored it; for final states, which must not be lost. */
  put(record: InvocationRecord): Promise<void>;
  delete(callId: string): Promise<void>;
  /** The record once final, or as it is after `timeoutMs` (a KV watch, see wait.ts). */
  waitForFinal(callId: string, timeoutMs: number, signal?: AbortSignal): Promise<InvocationRecord | undefined>;
}

/**
 * The records store on the records bucket `kv` (RECORDS_BUCKET, as provisionGateway and
 * provisionWorker open it); `nc` carries the unconfirmed writes.
 */
export function recordStore(nc: NatsConnection, kv: KV): RecordStore {
  const encoder = new TextEncoder();
  // Built once: nats.js encodes headers when it publishes and never changes them.
  const createOnly = natsHeaders();
  createOnly.set('Nats-Expected-Last-Subject-Sequence', '0');
  return {
    async get(callId) {
      return recordOf(await kv.get(callId));
    },
    async createIfAbsent(record) {
      try {
        await kv.create(record.callId, JSON.stringify(record));
        return true;
      } catch (err) {
        // 10071: wrong last sequence, i.e. the key exists. Anything else is a real failure.
        if (!(err instanceof JetStreamApiError && err.code === 10071)) throw err;
        return false;
      }
    },
    createUnconfirmed(record) {
      nc.publish(`$KV.${RECORDS_BUCKET}.${record.callId}`, encoder.encode(JSON.stringify(record)), { headers: createOnly });
    },
    putUnconfirmed(record) {
      // The subject JetStream KV stores `put`s under: $KV.<bucket>.<key>.
      nc.publish(`$KV.${RECORDS_BUCKET}.${record.callId}`, encoder.encode(JSON.stringify(record)));
    },
    async put(record) {
      await kv.put(record.callId, JSON.stringify(record));
    },
    async delete(callId) {
      await kv.delete(callId);
    },
    waitForFinal: (callId, timeoutMs, signal) => waitForFinal(kv, callId, timeoutMs, signal),
  };
}

/** Creates the records bucket if missing and opens a store on it, outside a process's provisioning. */
export async function openRecords(nc: NatsConnection, opts: KvBucketOptions): Promise<RecordStore> {
  return recordStore(nc, await openKvBucket(nc, RECORDS_BUCKET, opts));
}
