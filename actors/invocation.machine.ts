import { assign, fromPromise, setup } from 'xstate';
import { receiverStatusOf } from './callback.policy.js';
import { deadLetterReason } from './dead-letter.policy.js';
import type {
  CallbackHandOff,
  CallbackRequest,
  DeadLetterReason,
  DeadLetterRequest,
  FunctionOutcome,
  FunctionRequest,
  Invocation,
  InvocationInput,
  MessageHandle,
  ResultStorage,
  StoreResultRequest,
} from './invocation.types.js';
import { retryDelayMs, shouldRetry, withAnnotations, type RetryPolicy } from './retry.policy.js';

/** Status reported to the callback for a cancelled invocation (nginx's "client closed request"). */
export const CANCELLED_STATUS = 499;
/** Status reported to the callback for an invocation older than its max event age (never run). */
export const EXPIRED_STATUS = 408;

export interface InvocationContext extends InvocationInput {
  /** 1-based; comes from JetStream's delivery count, so it survives any worker's death. */
  readonly attempt: number;
  /** The policy in force: the queue's, with the function's annotations applied once it is known. */
  readonly policy: RetryPolicy;
  /** Annotations that could not be used, one line each (logged by the worker). */
  readonly policyWarnings: readonly string[];
  readonly outcome?: FunctionOutcome | undefined;
  readonly deadLetter?: DeadLetterReason | undefined;
  readonly cancelled: boolean;
  /** Set when the caller asked to keep the result: whether it was. */
  readonly resultStorage?: ResultStorage | undefined;
  /** Why the direct callback failed; it was then handed to durable delivery. */
  readonly callbackError?: string | undefined;
  /** The receiver's answer to the direct callback, when it answered (not 2xx); the retrier decides on it. */
  readonly callbackStatus?: number | undefined;
  /** Why the invocation could not be settled (ack, dead letter or callback hand-off failed). */
  readonly settleError?: string | undefined;
}

/**
 * `cancel`: the caller asked to cancel (DELETE /async-function/<call-id>).
 * `release`: the worker is stopping; give the message back to JetStream for another worker.
 */
export type InvocationEvent = { type: 'cancel' } | { type: 'release' };

/** Effects are named slots; the worker provides them with `.provide()`, tests with fakes. */
function notProvided(name: string): () => never {
  return () => {
    throw new Error(`invocation machine: actor "${name}" was not provided`);
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const text = new TextEncoder();

/** An outcome asyncfn reports itself, without calling the function. */
function syntheticOutcome(status: number, message: string, nowMs: number): FunctionOutcome {
  return { status, contentType: 'text/plain; charset=utf-8', body: text.encode(`${message}\n`), startedAtMs: nowMs, durationMs: 0 };
}

/**
 * One in-flight invocation, from the message's delivery to its settlement. The machine does no
 * I/O and reads no clock: the function call, callback, dead letter, callback hand-off and ack are
 * injected actors, the nak an injected action, time and randomness part of the input.
 */
export const invocationMachine = setup({
  types: {
    input: {} as InvocationInput,
    context: {} as InvocationContext,
    events: {} as InvocationEvent,
  },
  actors: {
    invokeFunction: fromPromise<FunctionOutcome, FunctionRequest>(notProvided('invokeFunction')),
    deliverCallback: fromPromise<void, CallbackRequest>(notProvided('deliverCallback')),
    handOffCallback: fromPromise<void, CallbackHandOff>(notProvided('handOffCallback')),
    deadLetter: fromPromise<void, DeadLetterRequest>(notProvided('deadLetter')),
    storeResult: fromPromise<ResultStorage, StoreResultRequest>(notProvided('storeResult')),
    ackAck: fromPromise<void, MessageHandle>(({ input }) => input.ackAck()),
    scheduleRetry: fromPromise<void, { message: MessageHandle; delayMs: number }>(({ input }) =>
      input.message.nakConfirmed(input.delayMs),
    ),
  },
  actions: {
    nak: ({ context }, params: { delayMs: number }) => context.message.nak(params.delayMs),
  },
  guards: {
    cancelRequested: ({ context }) => context.cancelRequested,
    expired: ({ context }) => context.invocation.expiresAtMs !== undefined && context.nowMs > context.invocation.expiresAtMs,
    shouldRetry: ({ context }) => context.outcome !== undefined && shouldRetry(context.outcome, context.attempt, context.policy),
    goesToDeadLetters: ({ context }) =>
      context.outcome !== undefined && deadLetterReason(context.outcome, context.policy, context.deadLetterNonRetryable) !== undefined,
    hasCallback: ({ context }) => context.invocation.callbackUrl !== undefined,
    wantsResult: ({ context }) => wantsResult(context),
    wasCancelled: ({ context }) => context.cancelled,
    wasDeadLettered: ({ context }) => context.deadLetter !== undefined,
  },
}).createMachine({
  id: 'invocation',
  initial: 'queued',
  context: ({ input }) => ({
    ...input,
    attempt: Math.max(1, input.message.deliveryCount),
    policyWarnings: [],
    cancelled: false,
  }),
  states: {
    /** Delivered, nothing done yet: skip it if it was cancelled or is too old. */
    queued: {
      always: [
        { guard: 'cancelRequested', target: 'cancelling' },
        {
          guard: 'expired',
          target: 'deadLettering',
          actions: assign({
            deadLetter: 'expired',
            attempt: ({ context }) => context.attempt - 1,
            outcome: ({ context }) => syntheticOutcome(EXPIRED_STATUS, 'not run: older than its max event age', context.nowMs),
          }),
        },
        { target: 'invoking' },
      ],
    },
    /** The function runs; leaving this state aborts the HTTP call through the actor's signal. */
    invoking: {
      on: { cancel: 'cancelling', release: 'released' },
      invoke: {
        src: 'invokeFunction',
        input: ({ context }) => ({ invocation: context.invocation, attempt: context.attempt }),
        onDone: {
          target: 'deciding',
          actions: assign(({ context, event }) => {
            const { policy, warnings } = withAnnotations(context.policy, event.output.annotations ?? {});
            return { outcome: event.output, policy, policyWarnings: warnings };
          }),
        },
        // The adapter turns transport failures into outcomes; landing here is a bug, reported as a 500.
        onError: {
          target: 'deciding',
          actions: assign({
            outcome: ({ context, event }) => ({
              ...syntheticOutcome(500, describe(event.error), context.nowMs),
              transportError: describe(event.error),
            }),
          }),
        },
      },
    },
    /** The outcome is known: retry it, dead-letter it, or report it. */
    deciding: {
      always: [
        { guard: 'shouldRetry', target: 'retrying' },
        {
          guard: 'goesToDeadLetters',
          target: 'deadLettering',
          actions: assign({
            deadLetter: ({ context }) => deadLetterReason(context.outcome!, context.policy, context.deadLetterNonRetryable),
          }),
        },
        { target: 'reporting' },
      ],
    },
    /**
     * Nak with the back-off delay and wait until the server has it: the next attempt is a new
     * delivery, maybe on another worker, and survives this worker's death from here on.
     */
    retrying: {
      invoke: {
        src: 'scheduleRetry',
        input: ({ context }) => ({
          message: context.message,
          delayMs: retryDelayMs(
            context.outcome!,
            context.attempt,
            context.policy,
            context.outcome!.startedAtMs + context.outcome!.durationMs,
            context.random,
          ),
        }),
        onDone: 'retryScheduled',
        // Not confirmed: JetStream redelivers after ack_wait anyway, only later than planned.
        onError: { target: 'retryScheduled', actions: assign({ settleError: ({ event }) => describe(event.error) }) },
      },
    },
    /** Settled for this attempt: the retry waits in JetStream. */
    retryScheduled: { type: 'final' },
    /** Store the original request and why it failed in the dead-letter stream (PubAck awaited). */
    deadLettering: {
      invoke: {
        src: 'deadLetter',
        input: ({ context }) => ({
          invocation: context.invocation,
          reason: context.deadLetter!,
          attempts: context.attempt,
          outcome: context.outcome,
        }),
        onDone: 'reporting',
        onError: { target: 'unsettled', actions: assign({ settleError: ({ event }) => describe(event.error) }) },
      },
    },
    /** Cancelled before or while running: the callback says so. */
    cancelling: {
      entry: assign({
        cancelled: true,
        outcome: ({ context }) => syntheticOutcome(CANCELLED_STATUS, 'invocation cancelled', context.nowMs),
      }),
      always: 'reporting',
    },
    reporting: {
      always: [{ guard: 'wantsResult', target: 'storingResult' }, { guard: 'hasCallback', target: 'callback' }, { target: 'acking' }],
    },
    /**
     * Keep the result for the status API before anything says the invocation is over. A failed
     * write is reported, not retried: re-running the function to store its result would be worse.
     */
    storingResult: {
      invoke: {
        src: 'storeResult',
        input: ({ context }) => ({ invocation: context.invocation, outcome: context.outcome! }),
        onDone: { target: 'reported', actions: assign({ resultStorage: ({ event }) => event.output }) },
        onError: { target: 'reported', actions: assign({ resultStorage: ({ event }) => ({ stored: false, reason: describe(event.error) }) }) },
      },
    },
    reported: {
      always: [{ guard: 'hasCallback', target: 'callback' }, { target: 'acking' }],
    },
    /**
     * POST the outcome to X-Callback-Url. A failed callback never re-runs the function. The
     * provided actor bounds this direct attempt with a short budget (callback_first_attempt_timeout)
     * and rejects when it runs out, so a receiver that never answers holds this slot only that long.
     */
    callback: {
      invoke: {
        src: 'deliverCallback',
        input: ({ context }) => callbackRequest(context),
        onDone: 'acking',
        onError: {
          target: 'handingOffCallback',
          actions: assign({ callbackError: ({ event }) => describe(event.error), callbackStatus: ({ event }) => receiverStatusOf(event.error) }),
        },
      },
    },
    /**
     * The receiver failed or did not answer within the budget: hand the result to durable callback
     * delivery (its own stream, back-off and full callback_timeout), PubAck awaited before the ack.
     */
    handingOffCallback: {
      invoke: {
        src: 'handOffCallback',
        input: ({ context }): CallbackHandOff => ({
          ...callbackRequest(context),
          error: context.callbackError ?? 'callback failed',
          status: context.callbackStatus,
        }),
        onDone: 'acking',
        onError: { target: 'unsettled', actions: assign({ settleError: ({ event }) => describe(event.error) }) },
      },
    },
    /** Double ack: the invocation is settled only when the server confirms. */
    acking: {
      invoke: {
        src: 'ackAck',
        input: ({ context }) => context.message,
        onDone: [
          { guard: 'wasCancelled', target: 'cancelled' },
          { guard: 'wasDeadLettered', target: 'deadLettered' },
          { target: 'acked' },
        ],
        onError: { target: 'ackFailed', actions: assign({ settleError: ({ event }) => describe(event.error) }) },
      },
    },
    /** Settled: JetStream removed the message. */
    acked: { type: 'final' },
    /** Settled as cancelled; the callback reported it. */
    cancelled: { type: 'final' },
    /** Settled: the request and its last outcome are in the dead-letter stream. */
    deadLettered: { type: 'final' },
    /** The ack was not confirmed: JetStream redelivers after ack_wait (at-least-once). */
    ackFailed: { type: 'final' },
    /** A dead letter or callback hand-off could not be stored: left unacked, JetStream redelivers it. */
    unsettled: { type: 'final' },
    /** Given back at shutdown with no delay, so another replica starts it at once. */
    released: { type: 'final', entry: { type: 'nak', params: { delayMs: 0 } } },
  },
});

/** Annotation with which a function asks for all its results to be kept. */
export const STORE_RESULT_ANNOTATION = 'com.asyncfn.store_result';

function wantsResult(context: InvocationContext): boolean {
  return context.invocation.storeResult === true || context.outcome?.annotations?.[STORE_RESULT_ANNOTATION] === 'true';
}

function callbackRequest(context: InvocationContext): CallbackRequest {
  return {
    invocation: context.invocation,
    outcome: context.outcome!,
    attempt: Math.max(1, context.attempt),
    maxAttempts: context.policy.maxAttempts,
  };
}

export type InvocationMachine = typeof invocationMachine;
/** Final states, for logs and metrics. */
export type InvocationSettlement =
  | 'retryScheduled'
  | 'acked'
  | 'cancelled'
  | 'deadLettered'
  | 'ackFailed'
  | 'unsettled'
  | 'released';
