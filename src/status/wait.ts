import type { KvEntry, KvWatchEntry, RoKV } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { FINAL_STATES, type InvocationRecord } from './record.js';
import { groupKeyOf, memberRecord } from './queued-groups.js';

/**
 * The part of the records bucket `waitForFinal` reads: the KV that provisionGateway or
 * provisionWorker opens, or `openRecordsIfPresent` for a read-only look (src/queue/topology.ts).
 */
export type RecordsReader = Pick<RoKV, 'get' | 'watch'>;

/** Longest timer Node keeps (about 24.8 days); a longer timeout waits without a timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * What a record's key may be: a KV key (nats.js `validKeyRe`, no empty tokens) without `/`, which
 * no call id holds and every group key does (queued-groups.ts). A call id outside this set has no
 * record and, worse, `*` or `>` in it would make a watch match other call ids.
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
 * Resolves with the final record as soon as it is written (a KV watch on the key pushes each write;
 * nothing polls), or, when `timeoutMs` passes first, with the record as it is then (queued,
 * running, retrying), or undefined when the call id has no record. One read comes first (`readRecord`: a queued invocation's group, when it has no record of its own), so a
 * finished invocation costs one read and no watch. A call id that cannot be a KV key (see
 * `isRecordKey`) resolves undefined at once: no record can exist under it.
 *
 * `timeoutMs`: ≥ 0, ms; 0 reads the record once; `Infinity` (or more than ~24.8 days) waits
 * without a timer, until final or aborted.
 *
 * Aborting `signal` rejects with `signal.reason` (as Node's own APIs do), at once when it is
 * already aborted. The watch is stopped on every path: final, timeout, abort, error.
 *
 * Rejects with a RangeError for a negative or NaN `timeoutMs`, and with the error when the bucket
 * cannot be read or the watch ends on its own (the connection closed) before a final state.
 */
export async function waitForFinal(kv: RecordsReader, callId: string, timeoutMs: number, signal?: AbortSignal): Promise<InvocationRecord | undefined> {
  if (!(timeoutMs >= 0)) throw new RangeError(`timeoutMs must be ≥ 0, got ${timeoutMs}`);
  signal?.throwIfAborted();
  if (!isRecordKey(callId)) return undefined;

  const deadlineMs = Date.now() + timeoutMs;
  const initial = await readRecord(kv, callId);
  signal?.throwIfAborted();
  if (isFinal(initial) || timeoutMs === 0) return initial;
  return watchUntilFinal(kv, callId, initial, deadlineMs - Date.now(), signal);
}

function watchUntilFinal(
  kv: RecordsReader,
  callId: string,
  initial: InvocationRecord | undefined,
  remainingMs: number,
  signal: AbortSignal | undefined,
): Promise<InvocationRecord | undefined> {
  return new Promise((resolve, reject) => {
    let current = initial;
    let watcher: QueuedIterator<KvWatchEntry> | undefined;
    let done = false;

    const finish = (settle: () => void): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      watcher?.stop();
      settle();
    };
    const onAbort = (): void => finish(() => reject(signal!.reason));
    // The watch may still be starting when time is up: the record read before it is the current one.
    const timer = Number.isFinite(remainingMs) && remainingMs <= MAX_TIMER_MS ? setTimeout(() => finish(() => resolve(current)), Math.max(0, remainingMs)) : undefined;
    signal?.addEventListener('abort', onAbort, { once: true });

    kv.watch({ key: callId }).then(
      async (w) => {
        if (done) {
          w.stop();
          return;
        }
        watcher = w;
        try {
          // The first entry is the key's current value (if any): a write between the get and the
          // watch is not missed. Then one entry per write, as it happens.
          for await (const entry of w) {
            if (entry.key !== callId) continue;
            current = recordOf(entry);
            if (isFinal(current)) {
              const final = current;
              finish(() => resolve(final));
              return;
            }
          }
          finish(() => reject(new Error(`the watch on invocation record "${callId}" ended before a final state`)));
        } catch (err) {
          finish(() => reject(err));
        }
      },
      (err: unknown) => finish(() => reject(err)),
    );
  });
}
