import type { KvEntry, RoKV } from '@nats-io/kv';
import { FINAL_STATES, type InvocationRecord } from './record.js';
import { groupKeyOf, memberRecord } from './queued-groups.js';
import { waitForKey, type SubscribeToKey } from './key-wait.js';

/**
 * The part of the records bucket `waitForFinal` reads: the KV that provisionGateway or
 * provisionWorker opens, or `openRecordsIfPresent` for a read-only look (src/queue/topology.ts).
 */
export type RecordsReader = Pick<RoKV, 'get'>;

/**
 * What a record's key may be: a KV key (nats.js `validKeyRe`, no empty tokens) without `/`, which
 * no call id holds and every group key does (queued-groups.ts). A call id outside this set has no
 * record and, worse, `*` or `>` in it would make a subscription to its writes match other call ids.
 */
const RECORD_KEY = /^[-=\w]+(?:\.[-=\w]+)*$/;

/** true when `callId` can be a key of the records bucket. */
export function isRecordKey(callId: string): boolean {
  return RECORD_KEY.test(callId);
}

/** true when nothing more will happen to the invocation. */
export function isFinal(record: InvocationRecord | undefined): boolean {
  return record !== undefined && FINAL_STATES.has(record.state);
}

/** The record a KV entry holds: undefined for a missing, deleted or purged key. */
export function recordOf(entry: KvEntry | null | undefined): InvocationRecord | undefined {
  return entry && entry.operation === 'PUT' && entry.length > 0 ? entry.json<InvocationRecord>() : undefined;
}

/**
 * The record of `callId` as the status API tells it: its own record (undefined when deleted), or,
 * when it has never had one, the `queued` record its group lists (queued-groups.ts). A key that is
 * no call id (a group's, with `/`) reads as no record: a group is never served as one.
 */
export async function readRecord(kv: Pick<RoKV, 'get'>, callId: string): Promise<InvocationRecord | undefined> {
  if (!isRecordKey(callId)) return undefined;
  const entry = await kv.get(callId);
  return entry ? recordOf(entry) : queuedInGroup(kv, callId);
}

/** The `queued` record the group of `callId` lists for it, if any; for a call id with no record of its own. */
export async function queuedInGroup(kv: Pick<RoKV, 'get'>, callId: string): Promise<InvocationRecord | undefined> {
  const groupKey = groupKeyOf(callId);
  if (groupKey === undefined) return undefined;
  const group = await kv.get(groupKey);
  return group?.operation === 'PUT' ? memberRecord(callId, group.value) : undefined;
}

/**
 * Waits until the invocation `callId` reaches a final state (`FINAL_STATES`: succeeded, failed,
 * cancelled, deadLettered), for at most `timeoutMs`.
 *
 * Resolves with the final record as soon as it is written (a core NATS subscription on the key's
 * subject, made before the first read: see key-wait.ts; nothing polls and no JetStream consumer is
 * left behind), or, when `timeoutMs` passes first, with the record as it is then (queued, running,
 * retrying: read again), or undefined when the call id has no record. The reads are `readRecord`'s
 * (a queued invocation's group, when it has no record of its own). A call id that cannot be a KV
 * key (see `isRecordKey`) resolves undefined at once: no record can exist under it.
 *
 * `timeoutMs`: ≥ 0, ms; 0 reads the record once; `Infinity` (or more than ~24.8 days) waits
 * without a timer, until final or aborted. `writes` subscribes to the records bucket's keys
 * (`keySubscriber(nc, RECORDS_BUCKET)`).
 *
 * Aborting `signal` rejects with `signal.reason` (as Node's own APIs do), at once when it is
 * already aborted. The subscription is stopped on every path: final, timeout, abort, error.
 *
 * Rejects with a RangeError for a negative or NaN `timeoutMs`, and with the error when the bucket
 * cannot be read or the connection closes before a final state.
 */
export async function waitForFinal(
  kv: RecordsReader,
  writes: SubscribeToKey,
  callId: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<InvocationRecord | undefined> {
  if (!(timeoutMs >= 0)) throw new RangeError(`timeoutMs must be ≥ 0, got ${timeoutMs}`);
  signal?.throwIfAborted();
  if (!isRecordKey(callId)) return undefined;
  if (timeoutMs === 0) return readRecord(kv, callId);
  return waitForKey({ key: callId, read: () => readRecord(kv, callId), subscribe: writes, decode: decodeRecord, isDone: isFinal }, timeoutMs, signal);
}

/** A record as written on its key's subject (undefined for a delete or purge). */
function decodeRecord(value: Uint8Array | undefined): InvocationRecord | undefined {
  return value === undefined ? undefined : (JSON.parse(Buffer.from(value).toString('utf8')) as InvocationRecord);
}
