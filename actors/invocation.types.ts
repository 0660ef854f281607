import type { RetryPolicy } from './retry.policy.js';

/** Where a payload too large for a message is stored: an object of the payload bucket. */
export interface PayloadRef {
  /** Object name in the bucket. */
  readonly name: string;
  /** Bytes. */
  readonly size: number;
  /** Lower-case hex SHA-256 of the bytes. */
  readonly sha256: string;
}

/** One asynchronous invocation as the gateway accepted it. */
export interface Invocation {
  /** Caller's X-Call-Id (OpenFaaS keeps it) or a generated UUID. */
  readonly callId: string;
  /**
   * The caller's X-Call-Id when it already named another invocation (a chained callback): this
   * invocation got a fresh `callId`, and the function and the callback get this as X-Parent-Call-Id.
   */
  readonly parentCallId?: string | undefined;
  readonly functionName: string;
  readonly namespace: string;
  /**
   * The batch this invocation is an item of (`POST /async-batch/<name>`): its final state is
   * counted towards the batch before the message is acked. Absent for every other invocation.
   */
  readonly batchId?: string | undefined;
  /** HTTP method the function is called with (OpenFaaS async invocations are POST). */
  readonly method: string;
  /** Path suffix after the function name, "" or "/a/b", percent-encoded as received. */
  readonly path: string;
  /** Raw query string without "?", "" when absent. */
  readonly query: string;
  /** Caller's headers, names lower-cased, one pair per value (repeated headers repeat). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The body when it travels in the message; empty when `bodyRef` names it. */
  readonly body: Uint8Array;
  /**
   * A body too large for a message (claim check): the object in the payload bucket that holds it
   * (src/queue/payload-store.ts). The worker streams it to the function on each attempt and deletes
   * it once the invocation is final; a dead letter keeps it until purged.
   */
  readonly bodyRef?: PayloadRef | undefined;
  readonly callbackUrl?: string | undefined;
  /** Unix time in milliseconds when the gateway accepted the request. */
  readonly enqueuedAtMs: number;
  /** Unix ms after which the invocation is dead-lettered unrun (max event age); absent = never. */
  readonly expiresAtMs?: number | undefined;
  /** Unix ms before which the invocation must not run (X-Delay-Seconds, X-Not-Before); absent = now. */
  readonly notBeforeMs?: number | undefined;
  /**
   * The caller's `X-Timeout`, ms (≥ 1): each attempt's function call may take at most this long.
   * It only lowers the function's or the queue's limit (src/functions/timeout.ts); absent = theirs.
   */
  readonly timeoutMs?: number | undefined;
  /** The caller asked for the result to be kept for `GET /async-function/<call-id>/result`. */
  readonly storeResult?: boolean | undefined;
  /** JetStream deduplication id derived from the caller's Idempotency-Key (written, not decoded). */
  readonly msgId?: string | undefined;
  /** W3C trace context of the producer span, carried across the queue. */
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
  /**
   * The message as it was published when it was not asyncfn's envelope (an OpenFaaS QueueRequest,
   * see src/queue/openfaas-request.ts): a dead letter keeps it instead of an envelope, so it stays
   * the message its publisher wrote. Never encoded into an envelope; opaque here (the queue
   * adapter's StoredMessage).
   */
  readonly original?: { readonly headers?: unknown; readonly data: Uint8Array } | undefined;
}

/**
 * The narrow port through which a machine settles its JetStream message. The queue adapter wraps
 * a JsMsg in it; unit tests record calls on a fake.
 */
export interface MessageHandle {
  /** JetStream's delivery count: 1 on the first delivery, n on the n-th attempt. */
  readonly deliveryCount: number;
  /** Extends the ack deadline by another ack_wait (the ack-extender calls it). */
  working(): void;
  /** Redeliver after `delayMs`; the retry waits in JetStream, not in this process. Fire and forget. */
  nak(delayMs: number): void;
  /** Nak, and resolve once the server has surely received it (a flush round trip). */
  nakConfirmed(delayMs: number): Promise<void>;
  /** Stop redelivering this message for good. */
  term(): void;
  /** Acknowledge and wait for the server to confirm; rejects when it does not. */
  ackAck(): Promise<void>;
}

/** What one call of the function produced. A 5xx is an outcome, not an exception. */
export interface FunctionOutcome {
  /** The function's HTTP status, or the status asyncfn reports for a transport failure. */
  readonly status: number;
  readonly contentType?: string | undefined;
  /** The function's `Content-Encoding` (a gzip body it sent because the caller accepted one): the body's readers need it. */
  readonly contentEncoding?: string | undefined;
  readonly body: Uint8Array;
  /** Unix ms when the call started. */
  readonly startedAtMs: number;
  readonly durationMs: number;
  /** Set when the function could not be reached or did not answer in time (status 503 or 504). */
  readonly transportError?: string | undefined;
  /** The function's Retry-After header, if any: it replaces the computed back-off. */
  readonly retryAfter?: string | undefined;
  /** The response carried `X-OpenFaaS-Internal`: an OpenFaaS component failed, always retried. */
  readonly internal?: boolean | undefined;
  /** What the called function's annotations ask for, read where it was resolved; absent = the queue's policy. */
  readonly functionPolicy?: FunctionPolicy | undefined;
}

/** A function's own policy, from its annotations (src/functions/annotations.ts). */
export interface FunctionPolicy {
  /** The queue's retry policy with the function's `com.openfaas.retry.*` overrides applied. */
  readonly policy: RetryPolicy;
  /** Annotations that could not be used, one line each (logged by the worker). */
  readonly warnings: readonly string[];
  /** `com.asyncfn.store_result=true`: keep every result of this function. */
  readonly storeResult: boolean;
  /**
   * The function's own call timeout (`com.asyncfn.timeout` / `com.openfaas.timeout`), ms, never
   * above the queue's `upstream_timeout`, and the annotation that set it; absent = upstream_timeout.
   */
  readonly timeout?: { readonly ms: number; readonly setBy: string } | undefined;
}

export interface FunctionRequest {
  readonly invocation: Invocation;
  /** 1-based attempt number. */
  readonly attempt: number;
}

export interface CallbackRequest {
  readonly invocation: Invocation;
  readonly outcome: FunctionOutcome;
  readonly attempt: number;
  readonly maxAttempts: number;
}

/** A callback whose direct attempt failed, as handed to durable delivery. */
export interface CallbackHandOff extends CallbackRequest {
  /** Why the direct attempt failed, one line. */
  readonly error: string;
  /** The receiver's answer to it, if it answered (a non-2xx status). */
  readonly status?: number | undefined;
}

/** The final outcome of an invocation whose caller asked to keep the result. */
export interface StoreResultRequest {
  readonly invocation: Invocation;
  readonly outcome: FunctionOutcome;
}

/** Whether the result was kept; `reason` says why not (too large, write failed). */
export interface ResultStorage {
  readonly stored: boolean;
  readonly reason?: string | undefined;
}

/** Why an invocation ends in the dead-letter stream (its `Asyncfn-Dlq-Reason` header, src/queue/dead-letter.ts). */
export type DeadLetterReason =
  /** Every attempt failed with a retryable status. */
  | 'retriesExhausted'
  /** The function answered a status that is not retried (counts only when configured). */
  | 'nonRetryable'
  /** Older than its max event age when delivered: never run. */
  | 'expired'
  /** The message on the stream is neither an asyncfn envelope nor an OpenFaaS QueueRequest. */
  | 'poison'
  /** The function ran, but its callback could not be delivered after every callback attempt. */
  | 'callbackFailed';

export interface DeadLetterRequest {
  readonly invocation: Invocation;
  readonly reason: DeadLetterReason;
  readonly attempts: number;
  readonly outcome?: FunctionOutcome | undefined;
}

/** The states an invocation's record can be written with by the worker (the gateway writes `queued`/`scheduled`). */
export type RecordedState = 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled' | 'deadLettered';

/** The states an invocation ends in. */
export type FinalState = Exclude<RecordedState, 'running' | 'retrying'>;

/** The final record of an invocation that is settled already, as a redelivery finds it. */
export interface SettledRecord {
  readonly state: FinalState;
  /** Attempts it made. */
  readonly attempts: number;
  /** Its function's last status, if it answered. */
  readonly status?: number | undefined;
}

/**
 * What a redelivery learns from its invocation's record before it runs anything: the final state
 * it was settled in, or the worker whose attempt is still running (its `running` record names
 * another worker), or neither.
 */
export interface PriorRecord {
  readonly settled?: SettledRecord | undefined;
  /** The worker a `running` record of this invocation names, when that is not this worker. */
  readonly runningOn?: string | undefined;
}

/** A batch item's end, counted towards its batch. */
export interface BatchItemEnd {
  readonly invocation: Invocation;
  readonly state: FinalState;
  readonly status?: number | undefined;
}

/** What the machine asks to record; the worker turns it into the status API's record. */
export interface RecordRequest {
  readonly invocation: Invocation;
  readonly state: RecordedState;
  /** 1-based attempt the record describes (0 for an expired invocation that never ran). */
  readonly attempt: number;
  /** The last outcome, once the function answered (or asyncfn reported one for it). */
  readonly outcome?: FunctionOutcome | undefined;
  /** Unix ms when the attempt started: the delivery for `running`, the function call's start otherwise. */
  readonly startedAtMs?: number | undefined;
  /** Why it failed: a transport error, else why the direct callback failed. */
  readonly error?: string | undefined;
  readonly resultStorage?: ResultStorage | undefined;
}

/** Everything a machine needs besides its message; the supervisor assembles it per delivery. */
export interface InvocationSettings {
  /** The queue's retry policy before the function's annotations are applied. */
  readonly policy: RetryPolicy;
  /** A cancellation was asked before this delivery. */
  readonly cancelRequested: boolean;
  /** Unix ms when the message was delivered (for max event age). */
  readonly nowMs: number;
  /** Source of jitter, [0, 1). */
  readonly random: () => number;
  /** Dead-letter invocations that end with a non-retryable failure (`dlq_non_retryable`). */
  readonly deadLetterNonRetryable: boolean;
  /**
   * Adaptive concurrency is on for this call (`adaptive_concurrency`): a throttle (429, or 503 with
   * Retry-After) waits in JetStream without counting as an attempt. Default false (absent): a
   * throttle is an ordinary retry. Either way a redelivery reads and records its attempt in the
   * attempt ledger (actors/attempt.policy.ts).
   */
  readonly adaptiveConcurrency?: boolean | undefined;
  /** Throttled deliveries of one invocation before throttles count as attempts again (`throttle_max_deliveries`); default 50. */
  readonly throttleMaxDeliveries?: number | undefined;
}

export interface InvocationInput extends InvocationSettings {
  readonly message: MessageHandle;
  readonly invocation: Invocation;
}
