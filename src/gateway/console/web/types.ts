/*
 * The JSON the console reads, as the gateway's documented HTTP APIs answer it (README: "Queues over
 * HTTP", "In flight now", "Dead letters over HTTP", the status and batch routes). Declared here
 * rather than imported from the server's modules: the page is built apart from them, for a browser.
 */

export interface LaneJson {
  readonly lane: string;
  readonly consumer: string;
  readonly pending: number;
  readonly ackPending: number;
  readonly inFlight: number | null;
  readonly waitingRetries: number | null;
  readonly limit: number | null;
}

export interface QueueJson {
  readonly name: string;
  readonly kind: 'queue' | 'delayed' | 'callbacks' | 'deadLetters';
  readonly consumer: string | null;
  readonly messages: number;
  readonly pending: number;
  readonly inFlight: number | null;
  readonly waitingRetries: number | null;
  readonly ackPending: number | null;
  readonly redelivered: number | null;
  readonly delivered: number | null;
  readonly consumers: number;
  readonly oldestAgeMs: number | null;
  readonly lanes: readonly LaneJson[];
}

export interface QueuesJson {
  readonly at: string;
  readonly queues: readonly QueueJson[];
}

export interface InFlightEntry {
  readonly callId: string;
  readonly function: string;
  readonly namespace: string;
  readonly queue: string;
  readonly lane?: string;
  readonly state: string;
  readonly attempt: number;
  readonly startedAtMs: number;
  readonly elapsedMs: number;
  /** What its function last reported (asked with `progress=true`). */
  readonly progress?: InvocationProgress;
}

export interface WorkerInFlight {
  readonly worker: string;
  readonly at: number;
  readonly total: number;
  readonly byState: Readonly<Record<string, number>>;
  readonly invocations: readonly InFlightEntry[];
  readonly truncated: boolean;
}

/** A running function's own report of how far it is (`POST` to its progress URL). */
export interface InvocationProgress {
  readonly percent: number;
  readonly message?: string;
  readonly atMs: number;
}

export interface InFlightJson {
  readonly workers: readonly WorkerInFlight[];
  readonly total: number;
}

export interface InvocationRecord {
  readonly callId: string;
  readonly parentCallId?: string;
  readonly batchId?: string;
  readonly function: string;
  readonly namespace: string;
  readonly queue: string;
  readonly state: string;
  readonly attempts: number;
  readonly status?: number;
  readonly enqueuedAtMs: number;
  readonly notBeforeMs?: number;
  readonly startedAtMs?: number;
  readonly finishedAtMs?: number;
  readonly durationMs?: number;
  readonly error?: string;
  readonly result?: { readonly stored: boolean; readonly status: number; readonly contentType?: string; readonly bytes: number; readonly reason?: string };
  readonly progress?: InvocationProgress;
}

export interface DeadLetterSummary {
  readonly seq: number;
  readonly callId: string | null;
  readonly function: string | null;
  readonly namespace: string | null;
  readonly queue: string;
  readonly reason: string;
  readonly lastStatus: number | null;
  readonly attempts: number;
  readonly atMs: number;
  readonly bodyBytes: number;
  readonly error: string | null;
}

export interface DeadLetterDetail extends DeadLetterSummary {
  readonly subject: string;
  readonly decodeError: string | null;
  readonly method: string | null;
  readonly path: string | null;
  readonly query: string | null;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly callbackUrl: string | null;
  readonly enqueuedAtMs: number | null;
  readonly body: string;
  readonly bodyEncoding: 'utf8' | 'base64';
  readonly bodyTruncated: boolean;
}

export interface DeadLetterPage {
  readonly items: readonly DeadLetterSummary[];
  readonly next: number | null;
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

export interface BatchStatus {
  readonly batchId: string;
  readonly function: string;
  readonly namespace: string;
  readonly queue: string;
  readonly state: string;
  readonly accepted: number;
  readonly counts: Readonly<Record<string, number>>;
  readonly done: boolean;
  readonly progress: number;
  readonly createdAtMs: number;
  readonly doneAtMs?: number;
  readonly failed?: readonly { readonly callId: string; readonly state: string; readonly status?: number }[];
}

export interface ConsoleSettings {
  readonly traceUrlTemplate: string;
}
