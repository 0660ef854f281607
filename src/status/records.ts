import type { KV } from '@nats-io/kv';
import { JetStreamApiError } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { openKvBucket, RECORDS_BUCKET, type KvBucketOptions } from '../queue/topology.js';
import { encodeOnce } from '../queue/encoded-headers.js';
import { queuedInGroup, readRecord, recordOf, waitForFinal } from './wait.js';
import { keySubscriber } from './key-wait.js';
import type { InvocationRecord } from './record.js';

export { FINAL_STATES, type InvocationProgress, type InvocationRecord, type InvocationState, type StoredResultInfo } from './record.js';

/**
 * A record as the bucket stores it: JSON in UTF-8. Buffer.from, not TextEncoder: a slice of node's
 * buffer pool (~0.3 µs for a record) instead of a new ArrayBuffer each (~1.3 µs); written once per
 * 202 by the gateway and once or twice per invocation by the worker.
 */
export function encodeRecord(record: InvocationRecord): Uint8Array {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

/** What a read-modify-write ({@link RecordStore.update}) decided: the record to write, if any, and what to resolve with. */
export interface RecordChange<T> {
  /** The record to write in place of the one read; absent = write nothing. */
  readonly write?: InvocationRecord | undefined;
  readonly result: T;
}

/** Read-modify-write attempts before {@link RecordStore.update} gives up: each lost race means the worker just wrote. */
export const RECORD_UPDATE_ATTEMPTS = 5;

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
  /**
   * Read-modify-write that never overwrites a newer record: `change` gets the record as stored
   * (undefined when there is none) and says what to write; the write expects the revision it read
   * (a KV update), and when another writer got in between, `change` runs again on the newer record,
   * up to RECORD_UPDATE_ATTEMPTS times (then it rejects). Resolves with the last `result`.
   */
  update<T>(callId: string, change: (record: InvocationRecord | undefined) => RecordChange<T>): Promise<T>;
  /** The record once final, or as it is after `timeoutMs` (a subscription to the key's writes, see wait.ts). */
  waitForFinal(callId: string, timeoutMs: number, signal?: AbortSignal): Promise<InvocationRecord | undefined>;
}

/**
 * The records store on the records bucket `kv` (RECORDS_BUCKET, as provisionGateway and
 * provisionWorker open it); `nc` carries the unconfirmed writes.
 */
export function recordStore(nc: NatsConnection, kv: KV): RecordStore {
  // Built and encoded once: every unconfirmed create sends the same block.
  const createOnly = natsHeaders();
  createOnly.set('Nats-Expected-Last-Subject-Sequence', '0');
  const createOnlyBlock = encodeOnce(createOnly).headers;
  const writes = keySubscriber(nc, RECORDS_BUCKET);
  return {
    get: (callId) => readRecord(kv, callId),
    async createIfAbsent(record) {
      // A queued invocation of a group has no record of its own yet: its call id is taken all the same.
      if ((await queuedInGroup(kv, record.callId)) !== undefined) return false;
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
      nc.publish(`$KV.${RECORDS_BUCKET}.${record.callId}`, encodeRecord(record), { headers: createOnlyBlock });
    },
    putUnconfirmed(record) {
      // The subject JetStream KV stores `put`s under: $KV.<bucket>.<key>.
      nc.publish(`$KV.${RECORDS_BUCKET}.${record.callId}`, encodeRecord(record));
    },
    async put(record) {
      await kv.put(record.callId, JSON.stringify(record));
    },
    async delete(callId) {
      await kv.delete(callId);
    },
    async update(callId, change) {
      for (let attempt = 1; ; attempt++) {
        const entry = await kv.get(callId);
        // Never written: a queued member of a group reads as its group says (the write creates its record).
        const decided = change(entry ? recordOf(entry) : await queuedInGroup(kv, callId));
        if (decided.write === undefined) return decided.result;
        try {
          // Revision 0 (no entry) makes the update a create.
          await kv.update(callId, JSON.stringify(decided.write), entry?.revision ?? 0);
          return decided.result;
        } catch (err) {
          // 10071: wrong last sequence, i.e. somebody wrote the key since it was read.
          const conflict = err instanceof JetStreamApiError && err.code === 10071;
          if (!conflict || attempt >= RECORD_UPDATE_ATTEMPTS) throw err;
        }
      }
    },
    waitForFinal: (callId, timeoutMs, signal) => waitForFinal(kv, writes, callId, timeoutMs, signal),
  };
}

/** Creates the records bucket if missing and opens a store on it, outside a process's provisioning. */
export async function openRecords(nc: NatsConnection, opts: KvBucketOptions): Promise<RecordStore> {
  return recordStore(nc, await openKvBucket(nc, RECORDS_BUCKET, opts));
}
