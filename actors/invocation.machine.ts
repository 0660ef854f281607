import { assign, fromPromise, setup } from 'xstate';
import type {
  CallbackRequest,
  FunctionOutcome,
  FunctionRequest,
  Invocation,
  InvocationInput,
  MessageHandle,
} from './invocation.types.js';
import { backoffDelayMs, shouldRetry, type RetryPolicy } from './retry.policy.js';

export interface InvocationContext {
  readonly message: MessageHandle;
  readonly invocation: Invocation;
  readonly policy: RetryPolicy;
  /** 1-based; comes from JetStream's delivery count, so it survives any worker's death. */
  readonly attempt: number;
  readonly outcome?: FunctionOutcome | undefined;
  /** Why the callback failed, when it did (#3 makes callbacks durable). */
  readonly callbackError?: string | undefined;
  /** Why the final ack was not confirmed; JetStream will redeliver after ack_wait. */
  readonly ackError?: string | undefined;
}

/** Sent by the supervisor at shutdown: give the message back to JetStream for another worker. */
export type InvocationEvent = { type: 'release' };

/** Effects are named slots; the worker provides them with `.provide()`, tests with fakes. */
function notProvided(name: string): () => never {
  return () => {
    throw new Error(`invocation machine: actor "${name}" was not provided`);
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * One in-flight invocation, from the message's delivery to its settlement. The machine does no
 * I/O and reads no clock: the function call, the callback and the ack are injected actors, the
 * nak is an injected action.
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
    ackAck: fromPromise<void, MessageHandle>(({ input }) => input.ackAck()),
  },
  actions: {
    nak: ({ context }, params: { delayMs: number }) => context.message.nak(params.delayMs),
  },
  guards: {
    shouldRetry: ({ context }) =>
      context.outcome !== undefined && shouldRetry(context.outcome, context.attempt, context.policy),
    hasCallback: ({ context }) => context.invocation.callbackUrl !== undefined,
  },
}).createMachine({
  id: 'invocation',
  initial: 'queued',
  context: ({ input }) => ({
    message: input.message,
    invocation: input.invocation,
    policy: input.policy,
    attempt: Math.max(1, input.message.deliveryCount),
  }),
  states: {
    /** Delivered, nothing done yet: where #3 skips cancelled and expired invocations. */
    queued: { always: 'invoking' },
    /** The function runs; leaving this state aborts the HTTP call through the actor's signal. */
    invoking: {
      on: { release: 'released' },
      invoke: {
        src: 'invokeFunction',
        input: ({ context }) => ({ invocation: context.invocation, attempt: context.attempt }),
        onDone: { target: 'deciding', actions: assign({ outcome: ({ event }) => event.output }) },
        // The adapter turns transport failures into outcomes; landing here is a bug, reported as a 500.
        onError: {
          target: 'deciding',
          actions: assign({
            outcome: ({ context, event }) => ({
              status: 500,
              body: new TextEncoder().encode(describe(event.error)),
              contentType: 'text/plain; charset=utf-8',
              startedAtMs: context.invocation.enqueuedAtMs,
              durationMs: 0,
              transportError: describe(event.error),
            }),
          }),
        },
      },
    },
    /** The outcome is known: retry it, report it, or just settle it. */
    deciding: {
      always: [
        { guard: 'shouldRetry', target: 'retrying' },
        { guard: 'hasCallback', target: 'callback' },
        { target: 'acking' },
      ],
    },
    /** Nak with the back-off delay: the next attempt is a new delivery, maybe on another worker. */
    retrying: {
      type: 'final',
      entry: {
        type: 'nak',
        params: ({ context }) => ({ delayMs: backoffDelayMs(context.attempt, context.policy) }),
      },
    },
    /** POST the outcome to X-Callback-Url. A failed callback never re-runs the function. */
    callback: {
      invoke: {
        src: 'deliverCallback',
        input: ({ context }) => ({
          invocation: context.invocation,
          outcome: context.outcome!,
          attempt: context.attempt,
          maxAttempts: context.policy.maxAttempts,
        }),
        onDone: 'acking',
        onError: { target: 'acking', actions: assign({ callbackError: ({ event }) => describe(event.error) }) },
      },
    },
    /** Double ack: the invocation is settled only when the server confirms. */
    acking: {
      invoke: {
        src: 'ackAck',
        input: ({ context }) => context.message,
        onDone: 'acked',
        onError: { target: 'ackFailed', actions: assign({ ackError: ({ event }) => describe(event.error) }) },
      },
    },
    /** Settled: JetStream removed the message. */
    acked: { type: 'final' },
    /** The ack was not confirmed: JetStream redelivers after ack_wait (at-least-once). */
    ackFailed: { type: 'final' },
    /** Given back at shutdown with no delay, so another replica starts it at once. */
    released: { type: 'final', entry: { type: 'nak', params: { delayMs: 0 } } },
  },
});

export type InvocationMachine = typeof invocationMachine;
/** Final states, for logs and metrics. */
export type InvocationSettlement = 'retrying' | 'acked' | 'ackFailed' | 'released';
