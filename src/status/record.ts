/**
 * The invocation record: what the status API tells of one invocation, whoever stores it (the
 * records bucket, records.ts; a queued invocation's group, queued-groups.ts).
 */

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
  /**
   * The latest progress the running function reported (a POST to its X-Asyncfn-Progress-Url,
   * written by the gateway). The worker's next record (the next attempt's `running`, a final
   * state) replaces the record without it.
   */
  readonly progress?: InvocationProgress | undefined;
  /**
   * A `running` record's: the worker running the attempt (hostname:pid, as in the in-flight view).
   * A redelivery that finds another worker's name here asks it before running anything
   * (src/worker/holders.ts).
   */
  readonly worker?: string | undefined;
}

/** A running function's own report of how far it is (src/status/progress.ts). */
export interface InvocationProgress {
  /** 0–100. */
  readonly percent: number;
  /** At most 200 characters. */
  readonly message?: string | undefined;
  /** When the gateway received the report, unix ms. */
  readonly atMs: number;
}

/** What the record says about a result kept for `GET /async-function/<call-id>/result`. */
export interface StoredResultInfo {
  /** false when it could not be kept: too large (`result_max_size`) or the write failed. */
  readonly stored: boolean;
  readonly status: number;
  readonly contentType?: string | undefined;
  readonly contentEncoding?: string | undefined;
  readonly bytes: number;
  /** Why it is not stored. */
  readonly reason?: string | undefined;
}
