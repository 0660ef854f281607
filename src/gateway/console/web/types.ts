/*
 * The JSON the console reads, as the gateway's documented HTTP APIs answer it (README: "Queues over
 * HTTP", "In flight now", "Dead letters over HTTP", the status and batch routes). The documents the
 * server builds are its own types, imported as types only (nothing of the server is bundled); the
 * rest is what the page sends or reads besides them.
 */

export type { QueueJson, QueuesJson } from '../../../status/queue-stats-json.js';
export type { InFlightEntry, WorkerInFlight } from '../../../status/inflight.js';
export type { InFlightView as InFlightJson } from '../../inflight.js';
export type { InvocationProgress, InvocationRecord } from '../../../status/records.js';
export type { DeadLetterDetail, DeadLetterPage, DeadLetterSummary } from '../../../dead-letters/view.js';
import type { BatchStatus as StoredBatchStatus } from '../../../status/batches.js';

/** `GET /async-batch/<id>`: the batch's status and a page of its failed items (src/gateway/routes/async-batch.ts). */
export interface BatchStatus extends StoredBatchStatus {
  readonly failed?: readonly { readonly callId: string; readonly state: string; readonly status?: number }[];
}

/** The dead-letter filter fields, as `asyncfn dlq` names its options; empty ones are left out. */
export interface DeadLetterFilter {
  readonly function?: string;
  readonly queue?: string;
  readonly reason?: string;
  readonly since?: string;
  readonly until?: string;
}

export interface ReplayResult {
  readonly matched: number;
  readonly replayed: number;
  readonly skipped: number;
}

export interface PurgeResult {
  readonly matched: number;
  readonly purged: number;
  readonly dryRun: boolean;
}

export interface ConsoleSettings {
  readonly traceUrlTemplate: string;
}
