import type { LedgerEntry } from './attempt.policy.js';
import type { RetryPolicy } from './retry.policy.js';
import type {
  BatchItemEnd,
  CallbackHandOff,
  CallbackRequest,
  DeadLetterRequest,
  FunctionOutcome,
  FunctionRequest,
  Invocation,
  MessageHandle,
  RecordRequest,
  ResultStorage,
  PriorRecord,
  StoreResultRequest,
} from './invocation.types.js';
import type { AbortLike } from './abort-handle.js';

/**
 * The effects an invocation machine starts: the worker provides them once per queue, unit tests
 * provide fakes. Each is a plain function returning a promise; the machine starts it from an
 * action and hears its result as an event, so an effect costs one promise, not a child actor.
 *
 * Only `invokeFunction` gets an abort signal (an AbortLike: the machine's light AbortHandle): it is the one effect the machine leaves before it
 * ends (cancellation, release at shutdown). Everything after the function call runs to its end.
 */
export interface InvocationEffects {
  /** Calls the function for one attempt; rejects only when `signal` aborted it. */
  invokeFunction(request: FunctionRequest, signal: AbortLike): Promise<FunctionOutcome>;
  /** The worker's direct callback attempt (bounded by callback_first_attempt_timeout); rejects unless the receiver answered 2xx. */
  deliverCallback(request: CallbackRequest): Promise<void>;
  /** Stores a failed callback in the durable callback stream (PubAck awaited). */
  handOffCallback(request: CallbackHandOff): Promise<void>;
  /**
   * Stores a callback that cannot be handed off (the hand-off failed for good) in the dead-letter
   * stream as `callbackFailed`, shrunk to fit as dead letters are (PubAck awaited).
   */
  deadLetterCallback(request: CallbackHandOff): Promise<void>;
  /** Stores the request and its last outcome in the dead-letter stream (PubAck awaited). */
  deadLetter(request: DeadLetterRequest): Promise<void>;
  /** Keeps the result for the status API. */
  storeResult(request: StoreResultRequest): Promise<ResultStorage>;
  /**
   * Writes the invocation's record. Final states (`succeeded`, `failed`, `cancelled`,
   * `deadLettered`) resolve once stored; `running` and `retrying` are informational and may be
   * written without waiting (their promise is not awaited by the machine).
   */
  record(request: RecordRequest): Promise<void>;
  /**
   * Deletes the stored body of an invocation that ended (claim check: `invocation.bodyRef`), once
   * its message is acked; not awaited, a failure is the effect's to report (the bucket's age limit
   * removes what is left). Default: nothing.
   */
  releasePayload(invocation: Invocation): Promise<void>;
  /**
   * Counts a batch item's final state towards its batch (and completes the batch when it was the
   * last); called only for invocations with a `batchId`, after the final record and before the
   * ack. A rejection leaves the message unacked: JetStream redelivers it, and the count is tried
   * again. Default: counts nothing.
   */
  countBatchItem(item: BatchItemEnd): Promise<void>;
  /** Acknowledges the message and resolves once the server confirmed it. Default: `message.ackAck()`. */
  ackAck(message: MessageHandle): Promise<void>;
  /** Naks with the back-off delay and resolves once the server has it. Default: `message.nakConfirmed()`. */
  scheduleRetry(message: MessageHandle, delayMs: number): Promise<void>;
  /**
   * This invocation's entry in the attempt ledger (actors/attempt.policy.ts): attempts started,
   * throttles. Read on every redelivery, never on a first delivery. Default (with `saveLedger`):
   * no ledger, every delivery is an attempt.
   */
  readonly loadLedger?: (invocation: Invocation) => Promise<LedgerEntry | undefined>;
  /**
   * This invocation's record (for its enqueue time), as a redelivery reads it beside the ledger.
   * Settled already (a final record): the delivery is acked and not run; JetStream sent it before
   * it had the ack of the attempt that settled the invocation (a worker may read it only after
   * that attempt is done), or that ack was lost once the final record was written. A `running`
   * record of another worker: that worker is asked whether it still runs it (`askHolder`).
   * Default: not read, every redelivery runs.
   */
  readonly priorRecord?: (invocation: Invocation) => Promise<PriorRecord | undefined>;
  /**
   * Asks `worker` (named by a `running` record) whether it still runs `invocation`; resolves true
   * when it does (it then extends the message's ack deadline) or cannot answer in time, false when
   * it does not or no such worker is connected. Default: not asked, the redelivery runs.
   */
  readonly askHolder?: (worker: string, invocation: Invocation) => Promise<boolean>;
  /** Stores this invocation's ledger entry; resolves once stored. Default: no ledger. */
  readonly saveLedger?: (invocation: Invocation, entry: Required<LedgerEntry>) => Promise<void>;
  /**
   * The retry policy of this invocation's function (its annotations over the queue's), read on a
   * redelivery before the call: one past max_attempts is not run again (its last attempt was
   * started and ended with its worker, e.g. a function that kills whoever calls it). Default: the
   * redelivery runs whatever its attempt.
   */
  readonly policyOf?: (invocation: Invocation) => Promise<RetryPolicy>;
}

function notProvided(name: string): () => Promise<never> {
  return () => Promise.reject(new Error(`invocation machine: effect "${name}" was not provided`));
}

/** What every machine starts with: the message-handle defaults, and a clear failure for the rest. */
export const DEFAULT_EFFECTS: InvocationEffects = Object.freeze({
  invokeFunction: notProvided('invokeFunction'),
  deliverCallback: notProvided('deliverCallback'),
  handOffCallback: notProvided('handOffCallback'),
  deadLetterCallback: notProvided('deadLetterCallback'),
  deadLetter: notProvided('deadLetter'),
  storeResult: notProvided('storeResult'),
  record: () => Promise.resolve(),
  releasePayload: () => Promise.resolve(),
  countBatchItem: () => Promise.resolve(),
  ackAck: (message: MessageHandle) => message.ackAck(),
  scheduleRetry: (message: MessageHandle, delayMs: number) => message.nakConfirmed(delayMs),
});
