import { assign, setup } from 'xstate';
import { AbortHandle } from './abort-handle.js';
import { isPermanentHandOffFailure, receiverStatusOf } from './callback.policy.js';
import { deadLetterReason, isSuccess } from './dead-letter.policy.js';
import { DEFAULT_EFFECTS, type InvocationEffects } from './invocation.effects.js';
import type {
  CallbackHandOff,
  CallbackRequest,
  DeadLetterReason,
  FinalState,
  FunctionOutcome,
  InvocationInput,
  RecordedState,
  PriorRecord,
  RecordRequest,
  ResultStorage,
  SettledRecord,
} from './invocation.types.js';
import { retryDelayMs, shouldRetry, type RetryPolicy } from './retry.policy.js';
import { describeError } from './describe-error.js';
import { DEFAULT_THROTTLE_MAX_DELIVERIES, isThrottle, throttleDelayMs } from './throttle.policy.js';
import { mayRun, redeliveredAttempt, type LedgerEntry, type RedeliveredAttempt } from './attempt.policy.js';

/** Status reported to the callback for a cancelled invocation (nginx's "client closed request"). */
export const CANCELLED_STATUS = 499;
/** Status reported to the callback for an invocation older than its max event age (never run). */
export const EXPIRED_STATUS = 408;
/** Status reported for an invocation whose last attempt was started and never finished (its worker stopped). */
export const UNFINISHED_STATUS = 500;

export interface InvocationContext extends InvocationInput {
  /**
   * 1-based: 1 on a first delivery; on a redelivery the next after those the attempt ledger has
   * recorded (actors/attempt.policy.ts), so it survives any worker's death.
   */
  readonly attempt: number;
  /** Throttled deliveries of this invocation before this one (from the attempt ledger); 0 on a first delivery. */
  readonly throttledDeliveries: number;
  /** Why the attempt ledger could not be read or written (the delivery went on without it). */
  readonly ledgerError?: string | undefined;
  /** The policy in force: the queue's, or the called function's own (its annotations, read where it was resolved). */
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
  /** Why the final record could not be written (the invocation is settled all the same). */
  readonly recordError?: string | undefined;
  /** Why the invocation could not be settled (ack, dead letter or callback hand-off failed). */
  readonly settleError?: string | undefined;
  /** A stale delivery's: the final record its invocation was settled with already. */
  readonly settledAlready?: SettledRecord | undefined;
  /** A delivery left to the worker still running its invocation: that worker. */
  readonly heldBy?: string | undefined;
  /**
   * The one mutable corner: the abort handle of the function call in progress, so that `cancel`
   * and `release` can cut it. Set by the action that starts the call; only `invoking` aborts it,
   * and aborting a call that has ended does nothing.
   */
  readonly running: { abort: AbortHandle | undefined; recorded: boolean };
}

/**
 * `cancel`: the caller asked to cancel (DELETE /async-function/<call-id>).
 * `release`: the worker is stopping; give the message back to JetStream for another worker.
 * `running`: the supervisor's sweep found the call still running after a moment: record it.
 * The rest report the end of an effect the machine started.
 */
export type InvocationEvent =
  | { type: 'cancel' }
  | { type: 'release' }
  | { type: 'running' }
  | { type: 'function.done'; output: FunctionOutcome }
  | { type: 'function.failed'; error: unknown }
  | { type: 'callback.done' }
  | { type: 'callback.failed'; error: unknown }
  | { type: 'handOff.done' }
  | { type: 'handOff.failed'; error: unknown }
  | { type: 'deadLetter.done' }
  | { type: 'deadLetter.failed'; error: unknown }
  | { type: 'result.done'; output: ResultStorage }
  | { type: 'result.failed'; error: unknown }
  | { type: 'retry.done' }
  | { type: 'retry.failed'; error: unknown }
  /** A redelivery's attempt, recorded in the ledger (or `ledgerError` says why not) before the function runs. */
  | { type: 'attempt.recorded'; output: RecordedAttempt }
  /** The throttle is in the ledger (or `ledgerError` says why not), then the nak confirmed. */
  | { type: 'throttle.done'; ledgerError: string | undefined }
  /** The nak of a throttle was not confirmed. */
  | { type: 'throttle.failed'; error: unknown; ledgerError: string | undefined }
  /** Recorded (or `recordError` says why not), then acked. */
  | { type: 'settle.done'; recordError: string | undefined }
  /** The ack was not confirmed. */
  | { type: 'settle.failed'; error: unknown; recordError: string | undefined };

const text = new TextEncoder();

/** An outcome asyncfn reports itself, without calling the function. */
function syntheticOutcome(status: number, message: string, nowMs: number): FunctionOutcome {
  return { status, contentType: 'text/plain; charset=utf-8', body: text.encode(`${message}\n`), startedAtMs: nowMs, durationMs: 0 };
}

/** Where an action's effect reports its end: the machine's own instance (an actor, or a MachineRun). */
interface Self {
  send(event: InvocationEvent): void;
}

/**
 * Runs an effect and reports its end to the machine as one of two events; a synchronous throw is a
 * failure. The events are made by the module functions below; what waits for the effect is the
 * pair of reactions on its promise (one small context for both), not an async function's frame:
 * an invocation keeps it for as long as the effect runs, through young-generation collections
 * that copy it (BENCHMARKS.md, "What an in-flight invocation holds").
 */
function report<T>(self: Self, effect: () => Promise<T>, done: (output: T) => InvocationEvent, failed: (error: unknown) => InvocationEvent): void {
  let pending: Promise<T>;
  try {
    pending = effect();
  } catch (error) {
    self.send(failed(error));
    return;
  }
  pending.then(
    (output) => self.send(done(output)),
    (error: unknown) => self.send(failed(error)),
  );
}

const functionDone = (output: FunctionOutcome): InvocationEvent => ({ type: 'function.done', output });
const functionFailed = (error: unknown): InvocationEvent => ({ type: 'function.failed', error });
const callbackDone = (): InvocationEvent => ({ type: 'callback.done' });
const callbackFailed = (error: unknown): InvocationEvent => ({ type: 'callback.failed', error });
const handOffDone = (): InvocationEvent => ({ type: 'handOff.done' });
const handOffFailed = (error: unknown): InvocationEvent => ({ type: 'handOff.failed', error });
const deadLetterDone = (): InvocationEvent => ({ type: 'deadLetter.done' });
const deadLetterFailed = (error: unknown): InvocationEvent => ({ type: 'deadLetter.failed', error });
const resultDone = (output: ResultStorage): InvocationEvent => ({ type: 'result.done', output });
const resultFailed = (error: unknown): InvocationEvent => ({ type: 'result.failed', error });
const retryDone = (): InvocationEvent => ({ type: 'retry.done' });
const retryFailed = (error: unknown): InvocationEvent => ({ type: 'retry.failed', error });
const settleDone = (recordError: string | undefined): InvocationEvent => ({ type: 'settle.done', recordError });
const settleFailed = (failure: unknown): InvocationEvent => ({
  type: 'settle.failed',
  error: (failure as SettleFailure).cause,
  recordError: (failure as SettleFailure).recordError,
});
const attemptRecorded = (output: RecordedAttempt): InvocationEvent => ({ type: 'attempt.recorded', output });
const throttleDone = (ledgerError: string | undefined): InvocationEvent => ({ type: 'throttle.done', ledgerError });
const throttleFailed = (failure: unknown): InvocationEvent => ({
  type: 'throttle.failed',
  error: (failure as SettleFailure).cause,
  ledgerError: (failure as SettleFailure).recordError,
});

/** A redelivery's attempt as the ledger gave it, and why the ledger could not be used, if it could not. */
interface RecordedAttempt extends RedeliveredAttempt {
  readonly ledgerError?: string | undefined;
  /** Set when the attempt may not run under this policy (actors/attempt.policy.ts, `mayRun`): none is left. */
  readonly spent?: RetryPolicy | undefined;
  /** Set when the invocation is settled already: its final record (`attempt` is the attempts it made). */
  readonly settled?: SettledRecord | undefined;
  /** Set when another worker still runs this invocation's attempt: that worker. */
  readonly heldBy?: string | undefined;
}

/** The ack (or a throttle's nak) failed; carries what the write before it (record, ledger) said. */
class SettleFailure extends Error {
  constructor(
    cause: unknown,
    readonly recordError: string | undefined,
  ) {
    super('acknowledging the settlement failed', { cause });
  }
}

/** A throttle beyond this many throttled deliveries counts as an attempt again. */
function throttleCap(context: InvocationContext): number {
  return context.throttleMaxDeliveries ?? DEFAULT_THROTTLE_MAX_DELIVERIES;
}

/**
 * The final record, then the double ack (the `settle` action's effect); resolves with why the
 * record could not be written, if it could not, and rejects with a {@link SettleFailure} when the
 * ack was not confirmed.
 */
async function settle(effects: InvocationEffects, context: InvocationContext): Promise<string | undefined> {
  let recordError: string | undefined;
  const state = finalState(context);
  try {
    await effects.record(recordRequest(context, state));
  } catch (error) {
    recordError = describeError(error);
  }
  try {
    // A batch item is counted before its ack: once JetStream forgets it, its batch knows it ended.
    if (context.invocation.batchId !== undefined) await effects.countBatchItem({ invocation: context.invocation, state, status: context.outcome?.status });
    await effects.ackAck(context.message);
  } catch (error) {
    throw new SettleFailure(error, recordError);
  }
  // Only once acked: a redelivery (the ack failed) runs the function again and needs the body.
  // A dead letter keeps its body until it is purged (or replayed and run).
  if (context.invocation.bodyRef !== undefined && !invocationDeadLettered(context.deadLetter)) {
    void effects.releasePayload(context.invocation).catch(() => undefined);
  }
  return recordError;
}

/** A redelivery whose ledger could not be read: every delivery counts as an attempt. */
function unreadLedger(deliveryCount: number, error: unknown): RecordedAttempt {
  return { attempt: deliveryCount, throttled: 0, ledgerError: `attempt ledger not read, every delivery counts as an attempt: ${describeError(error)}` };
}

/** The record of a redelivered invocation, if it has one; a record that cannot be read lets the delivery run, and says why. */
async function readPrior(effects: InvocationEffects, invocation: InvocationContext['invocation']): Promise<{ record?: PriorRecord; error?: string }> {
  if (effects.priorRecord === undefined) return {};
  try {
    return { record: await effects.priorRecord(invocation) };
  } catch (error) {
    return { error: `final record not read, the delivery runs: ${describeError(error)}` };
  }
}

/**
 * The `recordAttempt` action's effect: a redelivery reads its record and its ledger entry at once
 * (one round trip's wait, not two). Settled already: nothing more, it is acked. Still running on
 * the worker its `running` record names (JetStream gave up on that worker's deadline while it was
 * starved of CPU, or the network was slow): left to that worker, neither run nor recorded here.
 * Otherwise it takes the next attempt and records it before the call, so that a worker killed
 * mid-call has spent the attempt; one past the function's max_attempts and the one stalled attempt
 * allowed is neither recorded nor run (`spent`). A ledger that cannot be read counts every delivery
 * as an attempt (the retry policy errs towards ending sooner); one that cannot be written is
 * reported. A policy that cannot be read lets the attempt run.
 */
async function recordAttempt(effects: InvocationEffects, invocation: InvocationContext['invocation'], deliveryCount: number): Promise<RecordedAttempt> {
  const { loadLedger, saveLedger } = effects;
  const priorRead = readPrior(effects, invocation);
  let entry: LedgerEntry | undefined;
  let unread: { readonly error: unknown } | undefined;
  if (loadLedger !== undefined && saveLedger !== undefined) {
    try {
      entry = await loadLedger(invocation);
    } catch (error) {
      unread = { error };
    }
  }
  let prior = await priorRead;
  const holder = prior.record?.runningOn;
  if (holder !== undefined && effects.askHolder !== undefined) {
    if (await effects.askHolder(holder, invocation).catch(() => false))
      return { attempt: Math.max(1, entry?.attempts ?? 1), throttled: entry?.throttled ?? 0, heldBy: holder };
    // Not there any more: it may have settled the invocation between the read and the answer.
    prior = await readPrior(effects, invocation);
  }
  const settled = prior.record?.settled;
  if (settled !== undefined) return { attempt: settled.attempts, throttled: entry?.throttled ?? 0, settled };
  if (unread !== undefined) return unreadLedger(deliveryCount, unread.error);
  // No ledger: every delivery is an attempt.
  if (loadLedger === undefined || saveLedger === undefined) return { attempt: deliveryCount, throttled: 0, ledgerError: prior.error };
  const next = redeliveredAttempt(entry, deliveryCount);
  const policy = await effects.policyOf?.(invocation).catch(() => undefined);
  if (policy !== undefined && !mayRun(next.attempt, policy.maxAttempts)) return { ...next, spent: policy, ledgerError: prior.error };
  try {
    await saveLedger(invocation, { attempts: next.attempt, throttled: next.throttled });
  } catch (error) {
    return { ...next, ledgerError: `attempt ${next.attempt} not recorded, a later delivery may make it again: ${describeError(error)}` };
  }
  return prior.error === undefined ? next : { ...next, ledgerError: prior.error };
}

/**
 * Acks a stale delivery (its invocation is settled already); rejects with a {@link SettleFailure}
 * when the ack is not confirmed. A batch item is counted again first, as `settle` counts it: its
 * count may be what failed, and counting is idempotent per call id.
 */
async function ackStale(effects: InvocationEffects, context: InvocationContext): Promise<undefined> {
  const { invocation, settledAlready } = context;
  try {
    if (invocation.batchId !== undefined && settledAlready !== undefined) {
      await effects.countBatchItem({ invocation, state: settledAlready.state, status: settledAlready.status });
    }
    await effects.ackAck(context.message);
  } catch (error) {
    throw new SettleFailure(error, undefined);
  }
  return undefined;
}

/**
 * The machine's actions for a set of effects. Each starts one effect and turns its end into an
 * event: no child actor per step (an invoked `fromPromise` costs more than the rest of the machine).
 */
function effectActions(effects: InvocationEffects) {
  /** Informational: not awaited, a failure changes nothing; once per delivery (one machine each). */
  const recordRunningOnce = (context: InvocationContext): void => {
    if (context.running.recorded) return;
    context.running.recorded = true;
    void effects.record(recordRequest(context, 'running')).catch(() => undefined);
  };
  type Args = { context: InvocationContext; self: Self };
  return {
    invokeFunction: ({ context, self }: Args) => {
      // A message no asyncfn gateway published (an OpenFaaS QueueRequest) has no `queued` record:
      // its `running` one is written now, so its call id is taken before its callback can chain
      // into /async-function/<next> with it (README, "Call ids and chained calls").
      if (context.invocation.original !== undefined) recordRunningOnce(context);
      const abort = new AbortHandle();
      context.running.abort = abort;
      report(self, () => effects.invokeFunction({ invocation: context.invocation, attempt: context.attempt }, abort), functionDone, functionFailed);
    },
    abortFunction: ({ context }: Args) => {
      context.running.abort?.abort(new Error('the invocation left invoking'));
      context.running.abort = undefined;
    },
    deliverCallback: ({ context, self }: Args) => report(self, () => effects.deliverCallback(callbackRequest(context)), callbackDone, callbackFailed),
    handOffCallback: ({ context, self }: Args) => report(self, () => effects.handOffCallback(handOffRequest(context)), handOffDone, handOffFailed),
    deadLetterCallback: ({ context, self }: Args) => report(self, () => effects.deadLetterCallback(handOffRequest(context)), deadLetterDone, deadLetterFailed),
    deadLetter: ({ context, self }: Args) =>
      report(
        self,
        () => effects.deadLetter({ invocation: context.invocation, reason: context.deadLetter!, attempts: context.attempt, outcome: context.outcome }),
        deadLetterDone,
        deadLetterFailed,
      ),
    storeResult: ({ context, self }: Args) =>
      report(self, () => effects.storeResult({ invocation: context.invocation, outcome: context.outcome! }), resultDone, resultFailed),
    /**
     * The final record, then the double ack: one effect and one event for both, since every
     * invocation takes this path (an event costs the machine more than the two awaits). A batch
     * item is counted between the two; a count that fails leaves the message unacked (settle.failed).
     */
    settle: ({ context, self }: Args) => report(self, () => settle(effects, context), settleDone, settleFailed),
    ackStale: ({ context, self }: Args) => report(self, () => ackStale(effects, context), settleDone, settleFailed),
    /** Informational: not awaited, a failure changes nothing. */
    recordRunning: ({ context }: Args) => recordRunningOnce(context),
    recordRetrying: ({ context }: Args) => void effects.record(recordRequest(context, 'retrying')).catch(() => undefined),
    scheduleRetry: ({ context, self }: Args) => {
      const outcome = context.outcome!;
      const delayMs = retryDelayMs(outcome, context.attempt, context.policy, outcome.startedAtMs + outcome.durationMs, context.random);
      report(self, () => effects.scheduleRetry(context.message, delayMs), retryDone, retryFailed);
    },
    /** Fire and forget: given back at shutdown, another replica takes it at once. */
    release: ({ context }: Args) => context.message.nak(0),
    /** A redelivery: its final record and its ledger entry, then its attempt recorded (see `recordAttempt` above). */
    recordAttempt: ({ context, self }: Args) => {
      const { deliveryCount } = context.message;
      report(
        self,
        () => recordAttempt(effects, context.invocation, deliveryCount),
        attemptRecorded,
        (error) => attemptRecorded(unreadLedger(deliveryCount, error)),
      );
    },
    /**
     * The ledger first, then the nak: once the message can be redelivered, its next delivery must
     * find this throttle counted, and this delivery's attempt given back. A ledger write that fails
     * is reported and the nak sent all the same: the next delivery then counts this one as an attempt.
     */
    scheduleThrottle: ({ context, self }: Args) => {
      const outcome = context.outcome!;
      const delayMs = throttleDelayMs(outcome, context.policy, outcome.startedAtMs + outcome.durationMs, context.random);
      const throttle = async (): Promise<string | undefined> => {
        let ledgerError: string | undefined;
        try {
          await effects.saveLedger?.(context.invocation, { attempts: context.attempt - 1, throttled: context.throttledDeliveries + 1 });
        } catch (error) {
          ledgerError = `throttle not recorded, the next delivery counts it as an attempt: ${describeError(error)}`;
        }
        try {
          await effects.scheduleRetry(context.message, delayMs);
        } catch (error) {
          throw new SettleFailure(error, ledgerError);
        }
        return ledgerError;
      };
      report(self, throttle, throttleDone, throttleFailed);
    },
  };
}

/**
 * Where an invocation goes once its outcome is final: keep the result, call back, or go straight
 * to settling. Written out on each transition that leads there rather than as an eventless state
 * of its own: every microstep costs, and this is the path of every invocation.
 */
const REPORT = [{ guard: 'wantsResult', target: 'storingResult' }, { guard: 'hasCallback', target: 'callback' }, { target: 'settling' }] as const;

/**
 * Where the function's answer (`function.done`, or `function.failed`: a 500) sends an invocation:
 * throttled, retried, dead-lettered, or reported. The guards read the outcome from the event
 * (see `outcomeFor`), since a transition's guards run before its actions take the outcome in.
 */
const DECIDE = [
  { guard: 'throttled', target: 'throttling', actions: 'takeOutcome' },
  { guard: 'shouldRetry', target: 'retrying', actions: 'takeOutcome' },
  { guard: 'goesToDeadLetters', target: 'deadLettering', actions: ['takeOutcome', 'markDeadLetter'] },
  ...REPORT.map((t) => ({ ...t, actions: 'takeOutcome' as const })),
] as const;

/**
 * What a failed call is decided as: a transport error with status 500 (the outcome the machine
 * then keeps names the error). The decision reads only the status and `transportError`.
 */
const FAILED_CALL: FunctionOutcome = {
  status: 500,
  contentType: 'text/plain; charset=utf-8',
  body: new Uint8Array(0),
  startedAtMs: 0,
  durationMs: 0,
  transportError: 'the call failed',
};

/** The outcome to decide on: the one `event` brings, else the one the machine holds. */
function outcomeFor(context: InvocationContext, event: InvocationEvent): FunctionOutcome | undefined {
  if (event.type === 'function.done') return event.output;
  if (event.type === 'function.failed') return FAILED_CALL;
  return context.outcome;
}

/** The retry policy to decide with: the function's own when its answer brings one. */
function policyFor(context: InvocationContext, event: InvocationEvent): RetryPolicy {
  return event.type === 'function.done' ? (event.output.functionPolicy?.policy ?? context.policy) : context.policy;
}

/**
 * One in-flight invocation, from the message's delivery to its settlement. The machine does no
 * I/O and reads no clock: it starts effects it was given (see invocation.effects.ts) from its
 * actions and hears their results as events; time and randomness are part of the input.
 */
export const invocationMachine = setup({
  types: {
    input: {} as InvocationInput,
    context: {} as InvocationContext,
    events: {} as InvocationEvent,
  },
  actions: {
    ...effectActions(DEFAULT_EFFECTS),
    /** Keeps the function's answer (and the function's own policy, if it brings one), or a failed call as a 500. */
    takeOutcome: assign(({ context, event }) => {
      if (event.type === 'function.failed') {
        const error = describeError(event.error);
        return { outcome: { ...syntheticOutcome(500, error, context.nowMs), transportError: error } };
      }
      if (event.type !== 'function.done') return {};
      const own = event.output.functionPolicy;
      return own === undefined ? { outcome: event.output } : { outcome: event.output, policy: own.policy, policyWarnings: own.warnings };
    }),
    markDeadLetter: assign({
      deadLetter: ({ context }) => deadLetterReason(context.outcome!, context.policy, context.deadLetterNonRetryable),
    }),
  },
  guards: {
    cancelRequested: ({ context }) => context.cancelRequested,
    expired: ({ context }) => context.invocation.expiresAtMs !== undefined && context.nowMs > context.invocation.expiresAtMs,
    // A first delivery is attempt 1: its hot path makes no extra round trip. A redelivery reads and
    // records its attempt in the ledger, whatever adaptive concurrency says.
    redelivered: ({ context }) => context.message.deliveryCount > 1,
    throttled: ({ context, event }) => {
      const outcome = outcomeFor(context, event);
      return context.adaptiveConcurrency === true && outcome !== undefined && isThrottle(outcome) && context.throttledDeliveries < throttleCap(context);
    },
    shouldRetry: ({ context, event }) => {
      const outcome = outcomeFor(context, event);
      return outcome !== undefined && shouldRetry(outcome, context.attempt, policyFor(context, event));
    },
    goesToDeadLetters: ({ context, event }) => {
      const outcome = outcomeFor(context, event);
      return outcome !== undefined && deadLetterReason(outcome, policyFor(context, event), context.deadLetterNonRetryable) !== undefined;
    },
    hasCallback: ({ context }) => context.invocation.callbackUrl !== undefined,
    wantsResult: ({ context, event }) => context.invocation.storeResult === true || outcomeFor(context, event)?.functionPolicy?.storeResult === true,
    wasCancelled: ({ context }) => context.cancelled,
    wasDeadLettered: ({ context }) => invocationDeadLettered(context.deadLetter),
    handOffCannotSucceed: ({ event }) => event.type === 'handOff.failed' && isPermanentHandOffFailure(event.error),
    recorded: ({ event }) => event.type === 'settle.done' && event.recordError === undefined,
  },
}).createMachine({
  id: 'invocation',
  initial: 'queued',
  // One literal that names each field of the input, not a spread, which copied them one by one
  // (the context factory was 1.4 % of a warm drain's samples): the machine piece counts 264,934
  // instructions per invocation against 281,535 (`npm run bench:instructions -- --only machine`).
  // The `satisfies` makes the compiler ask for any field added to the input.
  context: ({ input }) =>
    ({
      policy: input.policy,
      cancelRequested: input.cancelRequested,
      nowMs: input.nowMs,
      random: input.random,
      deadLetterNonRetryable: input.deadLetterNonRetryable,
      adaptiveConcurrency: input.adaptiveConcurrency,
      throttleMaxDeliveries: input.throttleMaxDeliveries,
      message: input.message,
      invocation: input.invocation,
      attempt: Math.max(1, input.message.deliveryCount),
      throttledDeliveries: 0,
      policyWarnings: [],
      cancelled: false,
      running: { abort: undefined, recorded: false },
    }) satisfies { [K in keyof InvocationInput]-?: unknown } & Partial<InvocationContext>,
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
        { guard: 'redelivered', target: 'recordingAttempt' },
        { target: 'invoking' },
      ],
    },
    /**
     * A redelivery: its attempt is the next after those the ledger recorded, not JetStream's
     * delivery count, which also counts deliveries that started none (see actors/attempt.policy.ts).
     */
    recordingAttempt: {
      entry: 'recordAttempt',
      on: {
        cancel: 'cancelling',
        release: 'released',
        'attempt.recorded': [
          {
            // Still running on another worker, which answered for it (and extended its deadline).
            guard: ({ event }) => event.output.heldBy !== undefined,
            target: 'heldElsewhere',
            actions: assign(({ event }) => ({ attempt: event.output.attempt, heldBy: event.output.heldBy })),
          },
          {
            // Settled already: JetStream sent this delivery before it had the ack that settled it, or that ack was lost.
            guard: ({ event }) => event.output.settled !== undefined,
            target: 'ackingStale',
            actions: assign(({ event }) => ({ attempt: event.output.attempt, throttledDeliveries: event.output.throttled, settledAlready: event.output.settled })),
          },
          {
            // Its attempts ran out, the last cut off by its worker's death: a dead letter, not one more call.
            guard: ({ event }) => event.output.spent !== undefined,
            target: 'deadLettering',
            actions: assign(({ context, event }) => {
              const policy = event.output.spent!;
              const made = event.output.attempt - 1;
              const message = `not run again: ${made} attempts were started (max_attempts ${policy.maxAttempts}, and one more when a worker stops mid-call); the last did not finish (the worker running it stopped)`;
              return {
                attempt: made,
                throttledDeliveries: event.output.throttled,
                ledgerError: event.output.ledgerError,
                policy,
                deadLetter: 'retriesExhausted' as const,
                outcome: syntheticOutcome(UNFINISHED_STATUS, message, context.nowMs),
              };
            }),
          },
          {
            target: 'invoking',
            actions: assign(({ event }) => ({ attempt: event.output.attempt, throttledDeliveries: event.output.throttled, ledgerError: event.output.ledgerError })),
          },
        ],
      },
    },
    /**
     * A delivery of an invocation settled already (its final record is written): acked, not run,
     * nothing recorded. The function ran once for each attempt the record counts.
     */
    ackingStale: {
      entry: 'ackStale',
      on: {
        'settle.done': 'stale',
        // Not confirmed: JetStream delivers it again after ack_wait, and it is acked then.
        'settle.failed': { target: 'stale', actions: assign({ settleError: ({ event }) => describeError(event.error) }) },
      },
    },
    /** The function runs; `cancel` and `release` abort the HTTP call. */
    invoking: {
      entry: 'invokeFunction',
      on: {
        cancel: { target: 'cancelling', actions: 'abortFunction' },
        release: { target: 'released', actions: 'abortFunction' },
        running: { actions: 'recordRunning' },
        // The outcome is decided on the event that brings it (no state of its own: a microstep per invocation less).
        'function.done': DECIDE,
        // The adapter turns transport failures into outcomes; landing here is a bug, reported as a 500.
        'function.failed': DECIDE,
      },
    },
    /**
     * Nak with the back-off delay and wait until the server has it: the next attempt is a new
     * delivery, maybe on another worker, and survives this worker's death from here on.
     */
    retrying: {
      entry: 'scheduleRetry',
      on: {
        'retry.done': 'retryScheduled',
        // Not confirmed: JetStream redelivers after ack_wait anyway, only later than planned.
        'retry.failed': { target: 'retryScheduled', actions: assign({ settleError: ({ event }) => describeError(event.error) }) },
      },
    },
    /** Settled for this attempt: the retry waits in JetStream; the record says "retrying". */
    retryScheduled: { type: 'final', entry: 'recordRetrying' },
    /**
     * The function is overloaded (adaptive concurrency): count the throttle in the ledger, then nak
     * with its Retry-After or a short wait. Not an attempt, not a failure, never a dead letter,
     * until throttle_max_deliveries throttles of this invocation; after those it is decided as
     * any other outcome.
     */
    throttling: {
      entry: 'scheduleThrottle',
      on: {
        'throttle.done': { target: 'throttled', actions: assign({ ledgerError: ({ event }) => event.ledgerError }) },
        // Not confirmed: JetStream redelivers after ack_wait anyway, only later than planned.
        'throttle.failed': {
          target: 'throttled',
          actions: assign({ settleError: ({ event }) => describeError(event.error), ledgerError: ({ event }) => event.ledgerError }),
        },
      },
    },
    /** Settled for this delivery: the message waits in JetStream; the attempt is not used up; the record says "retrying". */
    throttled: { type: 'final', entry: 'recordRetrying' },
    /** Store the original request and why it failed in the dead-letter stream (PubAck awaited). */
    deadLettering: {
      entry: 'deadLetter',
      on: {
        'deadLetter.done': REPORT,
        'deadLetter.failed': { target: 'unsettled', actions: assign({ settleError: ({ event }) => describeError(event.error) }) },
      },
    },
    /** Cancelled before or while running: the callback says so. */
    cancelling: {
      entry: assign({
        cancelled: true,
        outcome: ({ context }) => syntheticOutcome(CANCELLED_STATUS, 'invocation cancelled', context.nowMs),
      }),
      always: REPORT,
    },
    /**
     * Keep the result for the status API before anything says the invocation is over. A failed
     * write is reported, not retried: re-running the function to store its result would be worse.
     */
    storingResult: {
      entry: 'storeResult',
      on: {
        'result.done': { target: 'reported', actions: assign({ resultStorage: ({ event }) => event.output }) },
        'result.failed': { target: 'reported', actions: assign({ resultStorage: ({ event }) => ({ stored: false, reason: describeError(event.error) }) }) },
      },
    },
    reported: {
      always: [{ guard: 'hasCallback', target: 'callback' }, { target: 'settling' }],
    },
    /**
     * POST the outcome to X-Callback-Url. A failed callback never re-runs the function. The
     * provided effect bounds this direct attempt with a short budget (callback_first_attempt_timeout)
     * and rejects when it runs out, so a receiver that never answers holds this slot only that long.
     */
    callback: {
      entry: 'deliverCallback',
      on: {
        'callback.done': 'settling',
        'callback.failed': {
          target: 'handingOffCallback',
          actions: assign({ callbackError: ({ event }) => describeError(event.error), callbackStatus: ({ event }) => receiverStatusOf(event.error) }),
        },
      },
    },
    /**
     * The receiver failed or did not answer within the budget: hand the result to durable callback
     * delivery (its own stream, back-off and full callback_timeout), PubAck awaited before the ack.
     */
    handingOffCallback: {
      entry: 'handOffCallback',
      on: {
        'handOff.done': 'settling',
        'handOff.failed': [
          {
            guard: 'handOffCannotSucceed',
            target: 'deadLetteringCallback',
            actions: assign({ callbackError: ({ context, event }) => `${context.callbackError ?? 'callback failed'}; not handed off: ${describeError(event.error)}` }),
          },
          // Not stored (NATS unavailable): JetStream redelivers the invocation after ack_wait.
          { target: 'unsettled', actions: assign({ settleError: ({ event }) => describeError(event.error) }) },
        ],
      },
    },
    /**
     * The result cannot be handed off, now or ever (too large even by reference): it goes to the
     * dead letters as `callbackFailed`, and the invocation is settled as its outcome says. Left
     * unacked it would run the function again on every redelivery, and fail the same way.
     */
    deadLetteringCallback: {
      entry: 'deadLetterCallback',
      on: {
        'deadLetter.done': { target: 'settling', actions: assign({ deadLetter: 'callbackFailed' as const }) },
        'deadLetter.failed': { target: 'unsettled', actions: assign({ settleError: ({ event }) => describeError(event.error) }) },
      },
    },
    /**
     * The final record is stored, then the message acked (double ack: settled only when the server
     * confirms), so that once JetStream forgets the message the status API already tells how it
     * ended. A record that cannot be written (after the effect's own retries) is reported, and the
     * invocation is acked all the same: leaving it unacked would run the function again.
     */
    settling: {
      entry: 'settle',
      on: {
        'settle.done': [
          { guard: 'wasCancelled', target: 'cancelled', actions: assign({ recordError: ({ event }) => event.recordError }) },
          { guard: 'wasDeadLettered', target: 'deadLettered', actions: assign({ recordError: ({ event }) => event.recordError }) },
          // Recorded, as nearly every invocation is: nothing to keep, so no assign (XState copies the context for one).
          { guard: 'recorded', target: 'acked' },
          { target: 'acked', actions: assign({ recordError: ({ event }) => event.recordError }) },
        ],
        'settle.failed': {
          target: 'ackFailed',
          actions: assign({ settleError: ({ event }) => describeError(event.error), recordError: ({ event }) => event.recordError }),
        },
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
    released: { type: 'final', entry: 'release' },
    /** A stale delivery, acked (see `ackingStale`). */
    stale: { type: 'final' },
    /**
     * A delivery of an invocation another worker still runs: neither run, recorded nor answered
     * here. That worker's ack or nak settles the message; if that worker dies, the message comes
     * back once its deadline passes, and the next delivery finds no worker to answer for it.
     */
    heldElsewhere: { type: 'final' },
  },
});

/** The invocation machine with `effects` (the rest keep their defaults): once per queue in the worker, per test in unit tests. */
export function withEffects(effects: Partial<InvocationEffects>): InvocationMachine {
  return invocationMachine.provide({ actions: effectActions({ ...DEFAULT_EFFECTS, ...effects }) });
}

function callbackRequest(context: InvocationContext): CallbackRequest {
  return {
    invocation: context.invocation,
    outcome: context.outcome!,
    attempt: Math.max(1, context.attempt),
    maxAttempts: context.policy.maxAttempts,
  };
}

/** The direct callback that failed, as durable delivery (or its dead letter) takes it. */
function handOffRequest(context: InvocationContext): CallbackHandOff {
  return { ...callbackRequest(context), error: context.callbackError ?? 'callback failed', status: context.callbackStatus };
}

/**
 * Whether the invocation itself is in the dead letters (it keeps its stored body until purged, or
 * replayed and run; its record says deadLettered); a callbackFailed one keeps only the result.
 */
function invocationDeadLettered(deadLetter: DeadLetterReason | undefined): boolean {
  return deadLetter !== undefined && deadLetter !== 'callbackFailed';
}

/** How the invocation ended, as its record says it. */
function finalState(context: InvocationContext): FinalState {
  if (context.cancelled) return 'cancelled';
  // A callbackFailed dead letter keeps the result, not the invocation: it ended as its outcome says.
  if (invocationDeadLettered(context.deadLetter)) return 'deadLettered';
  return context.outcome && isSuccess(context.outcome) ? 'succeeded' : 'failed';
}

function recordRequest(context: InvocationContext, state: RecordedState): RecordRequest {
  return {
    invocation: context.invocation,
    state,
    attempt: context.attempt,
    outcome: context.outcome,
    startedAtMs: state === 'running' ? context.nowMs : context.outcome?.startedAtMs,
    error: context.outcome?.transportError ?? context.callbackError,
    resultStorage: context.resultStorage,
  };
}

export type InvocationMachine = typeof invocationMachine;
/** Final states, for logs and metrics. */
export type InvocationSettlement =
  'retryScheduled' | 'throttled' | 'acked' | 'cancelled' | 'deadLettered' | 'ackFailed' | 'unsettled' | 'released' | 'stale' | 'heldElsewhere';
