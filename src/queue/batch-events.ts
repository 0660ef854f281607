import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { scanStream } from './scan.js';

/*
 * Counting a batch's final items (see the README, "Batches"). When an item of a batch reaches a
 * final state, the worker stores one small event on `asyncfn.batch.<batch-id>.<kind>.<state>` in
 * the batch-events stream (made in topology.ts), with `Nats-Msg-Id: <call-id>`, before it acks the
 * item: a redelivered item (a worker killed after the event, before the ack) is a duplicate and
 * never counts twice. The stream's per-subject counts are then the batch's counts, whichever
 * worker replica settled which item; failures sit under their own `kind`, so they can be listed
 * (paged by stream sequence) without reading the successes.
 */

/** The stream of batch item events; limits retention, kept as long as the records (`records_ttl`). */
export const BATCH_EVENTS_STREAM = 'asyncfn-batch-events';
export const BATCH_EVENT_PREFIX = 'asyncfn.batch.';

/** How a batch item ended. */
export type BatchFinalState = 'succeeded' | 'failed' | 'deadLettered' | 'cancelled';
export const BATCH_FINAL_STATES: readonly BatchFinalState[] = ['succeeded', 'failed', 'deadLettered', 'cancelled'];

/** Items that did not succeed and were not cancelled: what the failure list of a batch shows. */
const FAILURE_STATES: ReadonlySet<BatchFinalState> = new Set(['failed', 'deadLettered']);

/** One item's end, the event's payload. */
export interface BatchItemEvent {
  readonly batchId: string;
  readonly callId: string;
  readonly state: BatchFinalState;
  /** The function's last status (499 cancelled, 408 expired unrun); absent when it never answered. */
  readonly status?: number | undefined;
}

/** Final items of one batch by state. */
export type BatchFinalCounts = Readonly<Record<BatchFinalState, number>>;

/** The subject of one item's event. */
export function batchEventSubject(batchId: string, state: BatchFinalState): string {
  return `${BATCH_EVENT_PREFIX}${batchId}.${FAILURE_STATES.has(state) ? 'failure' : 'final'}.${state}`;
}

/** Every event of one batch. */
export function batchEventsFilter(batchId: string): string {
  return `${BATCH_EVENT_PREFIX}${batchId}.>`;
}

/** The events of one batch's failed and dead-lettered items. */
function failuresFilter(batchId: string): string {
  return `${BATCH_EVENT_PREFIX}${batchId}.failure.*`;
}

const encoder = new TextEncoder();

/**
 * Stores one item's event; resolves on PubAck (a duplicate, an item counted before, resolves too).
 * `timeoutMs`: the longest wait for the PubAck.
 */
export async function publishBatchEvent(js: JetStreamClient, event: BatchItemEvent, timeoutMs = 5_000): Promise<{ duplicate: boolean }> {
  const h = natsHeaders();
  h.set('Nats-Msg-Id', event.callId);
  const ack = await js.publish(batchEventSubject(event.batchId, event.state), encoder.encode(JSON.stringify(event)), { headers: h, timeout: timeoutMs });
  return { duplicate: ack.duplicate };
}

/** Pure: the counts by state from the stream's per-subject counts of one batch. */
export function countsFromSubjects(subjects: Readonly<Record<string, number>> | undefined): BatchFinalCounts {
  const counts: Record<BatchFinalState, number> = { succeeded: 0, failed: 0, deadLettered: 0, cancelled: 0 };
  for (const [subject, n] of Object.entries(subjects ?? {})) {
    const state = subject.slice(subject.lastIndexOf('.') + 1) as BatchFinalState;
    if (state in counts) counts[state] += n;
  }
  return counts;
}

/** Sum of the final items. */
export function finalCount(counts: BatchFinalCounts): number {
  return counts.succeeded + counts.failed + counts.deadLettered + counts.cancelled;
}

/** One batch's final items by state: the stream's per-subject counts (one request, whatever the batch's size). */
export async function readBatchCounts(jsm: JetStreamManager, batchId: string): Promise<BatchFinalCounts> {
  const info = await jsm.streams.info(BATCH_EVENTS_STREAM, { subjects_filter: batchEventsFilter(batchId) });
  return countsFromSubjects(info.state.subjects);
}

/** A page of a batch's failures. */
export interface BatchFailurePage {
  readonly items: ReadonlyArray<{ readonly callId: string; readonly state: BatchFinalState; readonly status?: number | undefined }>;
  /** Where the next page starts (a stream sequence, opaque to callers); absent on the last page. */
  readonly nextCursor?: number | undefined;
}

/**
 * Up to `limit` failed or dead-lettered items of a batch, from stream sequence `cursor` on (1 =
 * the start), read through one ordered consumer filtered on the server (see scan.ts): a handful
 * of round trips whatever the page's size (a page of 1,000 used to take 1,000 direct reads, one
 * after the other, and could outlast `publish_timeout` on a busy server). `nextCursor` is set
 * only when more failures follow the page's last.
 */
export async function readBatchFailures(jsm: JetStreamManager, batchId: string, cursor: number, limit: number): Promise<BatchFailurePage> {
  const items: Array<BatchFailurePage['items'][number]> = [];
  const consumer = { filter_subjects: failuresFilter(batchId), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, cursor) };
  for await (const msg of scanStream(jsm.jetstream(), { stream: BATCH_EVENTS_STREAM, consumer })) {
    const event = msg.json<BatchItemEvent>();
    items.push({ callId: event.callId, state: event.state, ...(event.status === undefined ? {} : { status: event.status }) });
    if (items.length === limit) return msg.info.pending > 0 ? { items, nextCursor: msg.seq + 1 } : { items };
  }
  return { items };
}
