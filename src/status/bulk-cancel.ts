import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { CancellationRequests } from './cancellations.js';
import { matchesInvocation, type InvocationFilter } from './filters.js';
import type { InvocationRecord } from './records.js';
import { GROUP_KEY_PREFIX, groupRecords } from './queued-groups.js';
import { SCAN_BATCH, scanStream } from '../queue/scan.js';
import { RECORDS_BUCKET } from '../queue/topology.js';

/** Cancellation markers written at once: a bounded window of KV puts in flight. */
export const CANCEL_WINDOW = 64;

const KV_OPERATION = 'KV-Operation';

/** What a scan of the records found: the matching call ids and how they divide. */
export interface InvocationMatches {
  /** Call ids of the matching records, in the bucket's order. */
  readonly callIds: readonly string[];
  /** The enqueue time of each, unix ms, in the order of `callIds`: each marker is at least as late (cancellations.ts). */
  readonly enqueuedAtMs: readonly number[];
  /** Matching records by state. */
  readonly byState: Readonly<Record<string, number>>;
  /** Matching records by `name.namespace`. */
  readonly byFunction: Readonly<Record<string, number>>;
  /** Records read (matching or not). */
  readonly scanned: number;
}

/**
 * Reads the last value of every key in the records bucket once and keeps the call ids of the
 * records matching `filter`, the queued members of groups with no record of their own included.
 *
 * How it scales: one ordered pull consumer over the bucket's stream with "last per subject",
 * {@link SCAN_BATCH} records per pull, so the client never buffers more than one batch: the time
 * is linear in the records the bucket holds (all of them, since records are keyed by call id and
 * no subject filter can select by function or state; `records_ttl` bounds them), the memory
 * linear in the matches (their call ids). Bounded: it stops at the count of records pending when
 * it started, so invocations enqueued during the scan are not included. `scanned` counts a group
 * once, as one value read.
 */
export async function scanInvocations(js: JetStreamClient, filter: InvocationFilter, onScanned?: (scanned: number) => void): Promise<InvocationMatches> {
  const callIds: string[] = [];
  const enqueuedAtMs: number[] = [];
  const byState: Record<string, number> = {};
  const byFunction: Record<string, number> = {};
  let scanned = 0;
  const prefix = `$KV.${RECORDS_BUCKET}.`;
  const scan = scanStream(js, { stream: `KV_${RECORDS_BUCKET}`, consumer: { filter_subjects: `${prefix}>`, deliver_policy: DeliverPolicy.LastPerSubject } });
  const match = (record: InvocationRecord): void => {
    if (!matchesInvocation(record, filter)) return;
    callIds.push(record.callId);
    enqueuedAtMs.push(record.enqueuedAtMs);
    byState[record.state] = (byState[record.state] ?? 0) + 1;
    const fn = `${record.function}.${record.namespace}`;
    byFunction[fn] = (byFunction[fn] ?? 0) + 1;
  };
  // Queued members of groups (queued-groups.ts) until their own record (or its deletion) turns
  // up: a group is written before any record of its members, on the same connection.
  const queued = new Map<string, InvocationRecord>();
  for await (const m of scan) {
    const key = m.subject.slice(prefix.length);
    const op = m.headers?.get(KV_OPERATION);
    if (op === 'DEL' || op === 'PURGE' || m.data.length === 0) {
      queued.delete(key);
      continue;
    }
    scanned += 1;
    if (key.startsWith(GROUP_KEY_PREFIX)) {
      for (const record of groupRecords(key, m.data)) queued.set(record.callId, record);
    } else {
      queued.delete(key);
      const record = parseRecord(m.data);
      if (record) match(record);
    }
    if (scanned % SCAN_BATCH === 0) onScanned?.(scanned);
  }
  for (const record of queued.values()) match(record);
  onScanned?.(scanned);
  return { callIds, enqueuedAtMs, byState, byFunction, scanned };
}

/** What writing the markers did. */
export interface CancelOutcome {
  readonly cancelled: number;
  /** Markers that could not be written, with the first error. */
  readonly failed: number;
  readonly firstError?: unknown;
}

/**
 * Writes a cancellation marker for each call id, at most {@link CANCEL_WINDOW} at a time, and
 * reports progress after each one. A failed write is counted and the rest go on: each marker
 * stands alone, and a repeated run writes the missing ones (a marker written twice is harmless).
 */
export async function cancelInvocations(
  cancellations: CancellationRequests,
  matches: Pick<InvocationMatches, 'callIds' | 'enqueuedAtMs'>,
  onProgress?: (done: number) => void,
): Promise<CancelOutcome> {
  const { callIds, enqueuedAtMs } = matches;
  let next = 0;
  let cancelled = 0;
  let failed = 0;
  let firstError: unknown;
  const lane = async (): Promise<void> => {
    while (next < callIds.length) {
      const i = next++;
      try {
        await cancellations.request(callIds[i]!, enqueuedAtMs[i]);
        cancelled += 1;
      } catch (err) {
        failed += 1;
        firstError ??= err;
      }
      onProgress?.(cancelled + failed);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CANCEL_WINDOW, callIds.length) }, lane));
  return failed > 0 ? { cancelled, failed, firstError } : { cancelled, failed };
}

function parseRecord(data: Uint8Array): InvocationRecord | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as InvocationRecord;
    return typeof value === 'object' && value !== null && typeof value.callId === 'string' ? value : undefined;
  } catch {
    // A value some other writer left in the bucket: not a record, never matched.
    return undefined;
  }
}
