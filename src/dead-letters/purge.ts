import { filterSubject, hasCriteria, isQueueOnly, type DeadLetterFilter } from './filters.js';
import type { DeadLetterStreamAccess, StreamBounds } from './read.js';
import { deleteDeadLetter, matchDeadLetters } from './replay-many.js';
import { DEAD_LETTER_STREAM } from '../queue/topology.js';
import { openPayloadStoreIfUsed, type PayloadStore } from '../queue/payload-store.js';

/**
 * How a purge selects what it removes: the whole stream (no criterion at all), one queue's
 * subject (the queue is the only criterion: the server purges by subject), or sequence by
 * sequence (anything else: the letters are read headers-only and deleted one by one).
 */
export type PurgeScope = 'stream' | 'subject' | 'seqs';

export function purgeScope(filter: DeadLetterFilter): PurgeScope {
  if (filter.seqs.length === 0 && !hasCriteria(filter)) return 'stream';
  return isQueueOnly(filter) ? 'subject' : 'seqs';
}

/** What a purge tells as it goes. */
export interface PurgeEvents {
  /** An explicit sequence that does not exist. */
  readonly missing?: (seq: number) => void;
  /** Deleting one by one: how many there are to delete, before the first. */
  readonly started?: (total: number) => void;
  /** Deleting one by one: dead letters processed so far. */
  readonly progress?: (done: number) => void;
  /** A stored body that could not be deleted (the dead letter is gone all the same). */
  readonly bodyNotDeleted?: (name: string, error: unknown) => void;
}

export interface PurgeOutcome {
  /** Dead letters that matched (for the stream and subject scopes: those the server purged). */
  readonly matched: number;
  readonly purged: number;
  /** Explicit sequences that did not exist. */
  readonly missing: number;
  /** Stored bodies deleted; undefined when the purged letters had none. */
  readonly bodiesDeleted: number | undefined;
}

/**
 * How many dead letters a purge of `filter` would remove now (a dry run): the stream's count for
 * the stream scope, else the letters matching, read headers-only up to `bounds.lastSeq`.
 */
export async function countDeadLetters(
  access: DeadLetterStreamAccess,
  filter: DeadLetterFilter,
  bounds: StreamBounds,
  onMissing?: (seq: number) => void,
): Promise<number> {
  if (purgeScope(filter) === 'stream') return bounds.messages;
  return (await matchDeadLetters(access, filter, bounds, onMissing)).seqs.length;
}

/**
 * Removes the dead letters matching `filter`, never one stored after `bounds.lastSeq` (dead
 * letters arriving meanwhile are kept), and then the stored bodies (claim checks in the payload
 * bucket) of those it removed: a dead letter keeps its invocation's body until it is purged.
 */
export async function purgeDeadLetters(access: DeadLetterStreamAccess, filter: DeadLetterFilter, bounds: StreamBounds, events: PurgeEvents = {}): Promise<PurgeOutcome> {
  const scope = purgeScope(filter);
  if (scope !== 'seqs') {
    const payloads = bounds.messages === 0 ? undefined : await openPayloadStoreIfUsed(access.jsm);
    // Only a bucket that holds anything is worth a scan of the letters' headers.
    const refs = payloads ? (await matchDeadLetters(access, filter, bounds)).refs : new Map<number, string>();
    const subject = scope === 'subject' ? { filter: filterSubject(filter) } : {};
    const purged = bounds.messages === 0 ? 0 : (await access.jsm.streams.purge(DEAD_LETTER_STREAM, { ...subject, seq: bounds.lastSeq + 1 })).purged;
    return { matched: purged, purged, missing: 0, bodiesDeleted: await deleteBodies(payloads, [...refs.values()], events) };
  }
  const payloads = await openPayloadStoreIfUsed(access.jsm);
  const { seqs, missing, refs } = await matchDeadLetters(access, filter, bounds, events.missing);
  events.started?.(seqs.length);
  let purged = 0;
  const names: string[] = [];
  for (const [i, seq] of seqs.entries()) {
    if (await deleteDeadLetter(access.jsm, seq)) {
      purged += 1;
      const name = refs.get(seq);
      if (name !== undefined) names.push(name);
    }
    events.progress?.(i + 1);
  }
  return { matched: seqs.length, purged, missing, bodiesDeleted: await deleteBodies(payloads, names, events) };
}

async function deleteBodies(payloads: PayloadStore | undefined, names: readonly string[], events: PurgeEvents): Promise<number | undefined> {
  if (!payloads || names.length === 0) return undefined;
  let deleted = 0;
  for (const name of names) {
    try {
      if (await payloads.delete(name)) deleted += 1;
    } catch (err) {
      events.bodyNotDeleted?.(name, err);
    }
  }
  return deleted;
}
