import t from 'tap';
import { testInvocation } from '../../helpers/invocations.js';
import { createActor, waitFor } from 'xstate';
import { CANCELLED_STATUS, EXPIRED_STATUS, withEffects } from '../../../actors/invocation.machine.js';
import type {
  CallbackHandOff,
  CallbackRequest,
  DeadLetterRequest,
  FunctionOutcome,
  FunctionRequest,
  Invocation,
  InvocationSettings,
  RecordRequest,
} from '../../../actors/invocation.types.js';
import type { RetryPolicy } from '../../../actors/retry.policy.js';
import { deliverySettings, fakeOutcome, recordingHandle, retryOn502 } from '../../helpers/machine-fakes.js';
import { functionPolicyOf, RETRY_ANNOTATIONS } from '../../../src/functions/annotations.js';
import type { AbortLike } from '../../../actors/abort-handle.js';

/**
 * Cancellation, expiry, dead letters, the callback hand-off, and the retry policy as the machine
 * applies it (Retry-After, annotations, internal failures, jitter).
 */

const NOW_MS = 5_000_000;

const envelope: Invocation = testInvocation({ enqueuedAtMs: NOW_MS - 1000 });

const policy: RetryPolicy = retryOn502();

function outcome(status: number, extra: Partial<FunctionOutcome> = {}): FunctionOutcome {
  return fakeOutcome(status, { startedAtMs: NOW_MS, ...extra });
}

type HandOff = CallbackHandOff;

interface Scenario {
  deliveryCount?: number;
  invocation?: Invocation;
  settings?: Partial<InvocationSettings>;
  invoke?: (request: FunctionRequest, signal: AbortLike) => Promise<FunctionOutcome>;
  callback?: () => Promise<void>;
  handOff?: () => Promise<void>;
  deadLetterCallback?: () => Promise<void>;
  deadLetter?: () => Promise<void>;
  nakConfirmed?: () => Promise<void>;
}

/**
 * One machine whose effect slots are recording fakes. `effects` logs every effect, the message
 * handle's included, in the order they happened.
 */
function start(s: Scenario = {}) {
  const { handle, calls: effects } = recordingHandle(s.deliveryCount ?? 1, { nakConfirmed: s.nakConfirmed });
  const invoked: FunctionRequest[] = [];
  const callbacks: CallbackRequest[] = [];
  const handOffs: HandOff[] = [];
  const deadLetters: DeadLetterRequest[] = [];
  const callbackDeadLetters: HandOff[] = [];
  const records: RecordRequest[] = [];
  const machine = withEffects({
    record: async (input) => void records.push(input),
    invokeFunction: (input, signal) => {
      effects.push('invokeFunction');
      invoked.push(input);
      return s.invoke ? s.invoke(input, signal) : Promise.resolve(outcome(200));
    },
    deliverCallback: async (input) => {
      effects.push('deliverCallback');
      callbacks.push(input);
      await s.callback?.();
    },
    handOffCallback: async (input) => {
      effects.push('handOffCallback');
      handOffs.push(input);
      await s.handOff?.();
    },
    deadLetterCallback: async (input) => {
      effects.push('deadLetterCallback');
      callbackDeadLetters.push(input);
      await s.deadLetterCallback?.();
    },
    deadLetter: async (input) => {
      effects.push(`deadLetter(${input.reason})`);
      deadLetters.push(input);
      await s.deadLetter?.();
    },
  });
  const settings: InvocationSettings = deliverySettings(policy, NOW_MS, s.settings);
  const actor = createActor(machine, { input: { message: handle, invocation: s.invocation ?? envelope, ...settings } });
  actor.start();
  const done = () => waitFor(actor, (snap) => snap.status === 'done', { timeout: 2000 });
  return { actor, effects, invoked, callbacks, handOffs, deadLetters, callbackDeadLetters, records, done };
}

/** A function call that runs until its abort fires; `started` resolves with that signal. */
function hangingInvoke() {
  let signalled!: (signal: AbortLike) => void;
  const started = new Promise<AbortLike>((resolve) => (signalled = resolve));
  const invoke = (_request: FunctionRequest, signal: AbortLike) => {
    signalled(signal);
    return new Promise<FunctionOutcome>((_resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason));
    });
  };
  return { started, invoke };
}

t.test('cancel requested before delivery: the function is not called, the callback gets 499, acked as cancelled', async (t) => {
  const run = start({ settings: { cancelRequested: true } });
  const snap = await run.done();
  t.equal(snap.value, 'cancelled');
  t.equal(run.invoked.length, 0, 'invokeFunction never called');
  t.equal(run.callbacks.length, 1);
  t.equal(run.callbacks[0]?.outcome.status, CANCELLED_STATUS);
  t.equal(CANCELLED_STATUS, 499);
  t.equal(run.callbacks[0]?.outcome.startedAtMs, NOW_MS);
  t.equal(run.callbacks[0]?.attempt, 1);
  t.equal(snap.context.cancelled, true);
  t.same(run.effects, ['deliverCallback', 'ackAck'], 'no dead letter, no nak');
});

t.test('cancel requested without a callback URL: acked as cancelled', async (t) => {
  const run = start({ settings: { cancelRequested: true }, invocation: { ...envelope, callbackUrl: undefined } });
  const snap = await run.done();
  t.equal(snap.value, 'cancelled');
  t.same(run.effects, ['ackAck']);
});

t.test('cancel while invoking: the call is aborted, the callback gets 499, acked as cancelled', async (t) => {
  const fn = hangingInvoke();
  const run = start({ invoke: fn.invoke });
  const signal = await fn.started;
  t.equal(run.actor.getSnapshot().value, 'invoking');
  t.equal(signal.aborted, false);
  run.actor.send({ type: 'cancel' });
  const snap = await run.done();
  t.equal(snap.value, 'cancelled');
  t.equal(signal.aborted, true, 'the abort given to invokeFunction fired');
  t.equal(run.callbacks[0]?.outcome.status, CANCELLED_STATUS);
  t.equal(snap.context.outcome?.status, CANCELLED_STATUS);
  t.same(run.effects, ['invokeFunction', 'deliverCallback', 'ackAck'], 'called once, no nak');
});

t.test('cancel during the callback is ignored: the outcome stands and the message is acked', async (t) => {
  let enter!: () => void;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  let finish!: () => void;
  const run = start({
    callback: () => {
      enter();
      return new Promise<void>((resolve) => (finish = resolve));
    },
  });
  await entered;
  run.actor.send({ type: 'cancel' });
  t.equal(run.actor.getSnapshot().value, 'callback');
  finish();
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.equal(run.callbacks[0]?.outcome.status, 200);
});

t.test('expired: dead-lettered unrun with reason expired, the callback gets 408, final deadLettered', async (t) => {
  const run = start({ deliveryCount: 3, invocation: { ...envelope, expiresAtMs: NOW_MS - 1 } });
  const snap = await run.done();
  t.equal(snap.value, 'deadLettered');
  t.equal(run.invoked.length, 0, 'the function is never called');
  t.equal(run.deadLetters.length, 1);
  const letter = run.deadLetters[0]!;
  t.equal(letter.reason, 'expired');
  t.equal(letter.attempts, 2, 'deliveryCount - 1: this delivery did not run it');
  t.equal(letter.invocation, run.actor.getSnapshot().context.invocation);
  t.equal(letter.outcome?.status, EXPIRED_STATUS);
  t.equal(EXPIRED_STATUS, 408);
  t.equal(run.callbacks[0]?.outcome.status, EXPIRED_STATUS);
  t.equal(snap.context.deadLetter, 'expired');
  t.same(run.effects, ['deadLetter(expired)', 'deliverCallback', 'ackAck']);
});

t.test('expired on the first delivery: 0 attempts in the dead letter, the callback still says attempt 1', async (t) => {
  const run = start({ invocation: { ...envelope, expiresAtMs: NOW_MS - 1 } });
  const snap = await run.done();
  t.equal(snap.value, 'deadLettered');
  t.equal(run.deadLetters[0]?.attempts, 0);
  t.equal(run.callbacks[0]?.attempt, 1);
});

t.test('not yet expired at expiresAtMs itself: the function runs', async (t) => {
  const run = start({ invocation: { ...envelope, expiresAtMs: NOW_MS } });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.equal(run.invoked.length, 1);
  t.same(run.deadLetters, []);
});

t.test('a retryable failure on the last attempt: dead letter retriesExhausted, then callback, then deadLettered', async (t) => {
  const failed = outcome(502);
  const run = start({ deliveryCount: 3, invoke: async () => failed });
  const snap = await run.done();
  t.equal(snap.value, 'deadLettered');
  t.same(run.effects, ['invokeFunction', 'deadLetter(retriesExhausted)', 'deliverCallback', 'ackAck']);
  t.equal(run.deadLetters[0]?.attempts, 3);
  t.equal(run.deadLetters[0]?.outcome, failed);
  t.equal(run.callbacks[0]?.outcome, failed);
  t.equal(snap.context.deadLetter, 'retriesExhausted');
});

t.test('a non-retryable failure', async (t) => {
  t.test('is not dead-lettered by default', async (t) => {
    const run = start({ invoke: async () => outcome(404) });
    const snap = await run.done();
    t.equal(snap.value, 'acked');
    t.same(run.deadLetters, []);
    t.equal(snap.context.deadLetter, undefined);
    t.same(run.effects, ['invokeFunction', 'deliverCallback', 'ackAck']);
  });
  t.test('is dead-lettered as nonRetryable with deadLetterNonRetryable', async (t) => {
    const run = start({ settings: { deadLetterNonRetryable: true }, invoke: async () => outcome(404) });
    const snap = await run.done();
    t.equal(snap.value, 'deadLettered');
    t.equal(run.deadLetters[0]?.reason, 'nonRetryable');
    t.equal(run.deadLetters[0]?.attempts, 1);
    t.same(run.effects, ['invokeFunction', 'deadLetter(nonRetryable)', 'deliverCallback', 'ackAck']);
  });
  t.test('a success is never dead-lettered, even with deadLetterNonRetryable', async (t) => {
    const run = start({ settings: { deadLetterNonRetryable: true } });
    const snap = await run.done();
    t.equal(snap.value, 'acked');
    t.same(run.deadLetters, []);
  });
});

t.test('a dead letter that cannot be stored: unsettled, no callback, no ack, no nak', async (t) => {
  const run = start({ deliveryCount: 3, invoke: async () => outcome(502), deadLetter: () => Promise.reject(new Error('no PubAck')) });
  const snap = await run.done();
  t.equal(snap.value, 'unsettled');
  t.equal(snap.context.settleError, 'no PubAck');
  t.same(run.effects, ['invokeFunction', 'deadLetter(retriesExhausted)'], 'JetStream redelivers after ack_wait');
});

t.test('a failed callback is handed off with its error, then acked; the function ran once', async (t) => {
  const run = start({ callback: () => Promise.reject(new Error('callback refused: 503')) });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.effects, ['invokeFunction', 'deliverCallback', 'handOffCallback', 'ackAck']);
  const handOff = run.handOffs[0]!;
  t.equal(handOff.error, 'callback refused: 503');
  t.equal(handOff.invocation, run.callbacks[0]?.invocation);
  t.equal(handOff.outcome, run.callbacks[0]?.outcome);
  t.equal(handOff.attempt, 1);
  t.equal(handOff.maxAttempts, policy.maxAttempts);
  t.equal(snap.context.callbackError, 'callback refused: 503');
  t.equal(run.invoked.length, 1);
});

t.test("the hand-off carries the receiver's answer to the direct attempt, or none when it did not answer", async (t) => {
  const answered = start({
    deliveryCount: 2,
    callback: () => Promise.reject(Object.assign(new Error('callback failed: receiver answered 404'), { status: 404 })),
  });
  t.equal((await answered.done()).value, 'acked');
  t.match(answered.handOffs[0], { error: 'callback failed: receiver answered 404', status: 404, attempt: 2 }, 'the function attempt stays the X-Retry source');
  // What the worker's budgeted direct attempt rejects with when the receiver is silent.
  const silent = start({ callback: () => Promise.reject(new Error('callback failed: no answer within 1000 ms')) });
  t.equal((await silent.done()).value, 'acked');
  t.same(silent.effects, ['invokeFunction', 'deliverCallback', 'handOffCallback', 'ackAck'], 'handed off, then acked: the slot is free');
  t.equal(silent.handOffs[0]?.status, undefined);
  t.equal(silent.handOffs[0]?.error, 'callback failed: no answer within 1000 ms');
});

t.test('a callback hand-off that fails: unsettled, no ack, no nak', async (t) => {
  const run = start({
    callback: () => Promise.reject(new Error('callback refused: 503')),
    handOff: () => Promise.reject(new Error('callback stream unavailable')),
  });
  const snap = await run.done();
  t.equal(snap.value, 'unsettled');
  t.equal(snap.context.settleError, 'callback stream unavailable');
  t.same(run.effects, ['invokeFunction', 'deliverCallback', 'handOffCallback']);
});

/** What handOffCallback rejects with for a callback too large to store even by reference (src/callback/stored.ts). */
const notStorable = () => Promise.reject(Object.assign(new Error('the callback is too large to store'), { permanent: true }));

t.test('a callback that can never be handed off is dead-lettered as callbackFailed and acked: the function does not run again', async (t) => {
  const run = start({ callback: () => Promise.reject(new Error('callback refused: 503')), handOff: notStorable });
  const snap = await run.done();
  t.equal(snap.value, 'acked', 'settled: no redelivery runs the function again');
  t.same(run.effects, ['invokeFunction', 'deliverCallback', 'handOffCallback', 'deadLetterCallback', 'ackAck']);
  t.equal(snap.context.deadLetter, 'callbackFailed');
  t.equal(snap.context.settleError, undefined);
  t.match(run.callbackDeadLetters[0], { error: 'callback refused: 503; not handed off: the callback is too large to store', attempt: 1 });
  t.equal(run.callbackDeadLetters[0]?.outcome, run.callbacks[0]?.outcome, 'the result is what the dead letter keeps');
  t.match(
    run.records.map((r) => r.state),
    ['succeeded'],
    'the invocation succeeded; only its callback is a dead letter',
  );
  t.equal(run.invoked.length, 1);
});

t.test('a callback that can never be handed off and whose dead letter is not stored either: unsettled', async (t) => {
  const run = start({
    callback: () => Promise.reject(new Error('callback refused: 503')),
    handOff: notStorable,
    deadLetterCallback: () => Promise.reject(new Error('no PubAck')),
  });
  const snap = await run.done();
  t.equal(snap.value, 'unsettled', 'JetStream redelivers after ack_wait');
  t.equal(snap.context.settleError, 'no PubAck');
  t.same(run.effects, ['invokeFunction', 'deliverCallback', 'handOffCallback', 'deadLetterCallback']);
});

t.test('a retry the server did not confirm: retryScheduled with settleError, nothing else', async (t) => {
  const run = start({ invoke: async () => outcome(502), nakConfirmed: () => Promise.reject(new Error('flush timed out')) });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled', 'JetStream redelivers after ack_wait anyway');
  t.equal(snap.context.settleError, 'flush timed out');
  t.same(run.effects, ['invokeFunction', 'nakConfirmed(100)'], 'no callback, no ack, no second nak');
});

t.test("the function's Retry-After sets the nak delay, clamped to [initialWaitMs, maxWaitMs]", async (t) => {
  const nak = async (retryAfter: string, extra: Partial<FunctionOutcome> = {}) => {
    const run = start({ invoke: async () => outcome(502, { retryAfter, ...extra }) });
    t.equal((await run.done()).value, 'retryScheduled');
    return run.effects.filter((e) => e.startsWith('nak'));
  };
  t.same(await nak('5'), ['nakConfirmed(5000)'], 'seconds, instead of the 100 ms back-off');
  t.same(await nak('60'), ['nakConfirmed(10000)'], 'at most maxWaitMs');
  t.same(await nak('0'), ['nakConfirmed(100)'], 'at least initialWaitMs');
  // An HTTP date counts from when the function answered, not from the delivery.
  const answeredAtMs = Date.UTC(2024, 0, 1, 0, 0, 1);
  t.same(await nak('Mon, 01 Jan 2024 00:00:04 GMT', { startedAtMs: answeredAtMs - 500, durationMs: 500 }), ['nakConfirmed(3000)'], 'a date 3 s after the answer');
});

t.test("the function's annotations override the queue's policy", async (t) => {
  const single: RetryPolicy = { ...policy, maxAttempts: 1 };
  t.test('without them, attempt 2 of maxAttempts 1 is not retried', async (t) => {
    const run = start({ deliveryCount: 2, settings: { policy: single }, invoke: async () => outcome(502) });
    const snap = await run.done();
    t.equal(snap.value, 'deadLettered');
    t.same(snap.context.policyWarnings, []);
  });
  t.test('com.openfaas.retry.attempts 3 allows a retry at attempt 2', async (t) => {
    const run = start({
      deliveryCount: 2,
      settings: { policy: single },
      invoke: async () => outcome(502, { functionPolicy: functionPolicyOf(single, { [RETRY_ANNOTATIONS.attempts]: '3' }) }),
    });
    const snap = await run.done();
    t.equal(snap.value, 'retryScheduled');
    t.equal(snap.context.policy.maxAttempts, 3);
    t.same(run.effects, ['invokeFunction', 'nakConfirmed(200)']);
    t.same(snap.context.policyWarnings, []);
  });
  t.test('the callback reports the annotated maxAttempts', async (t) => {
    const run = start({
      deliveryCount: 3,
      settings: { policy: single },
      invoke: async () => outcome(502, { functionPolicy: functionPolicyOf(single, { [RETRY_ANNOTATIONS.attempts]: '3' }) }),
    });
    const snap = await run.done();
    t.equal(snap.value, 'deadLettered');
    t.equal(run.callbacks[0]?.maxAttempts, 3);
  });
  t.test('a bad annotation keeps the base value and lands a warning in policyWarnings', async (t) => {
    const run = start({
      deliveryCount: 2,
      settings: { policy: single },
      invoke: async () => outcome(502, { functionPolicy: functionPolicyOf(single, { [RETRY_ANNOTATIONS.attempts]: 'three' }) }),
    });
    const snap = await run.done();
    t.equal(snap.value, 'deadLettered', 'maxAttempts stays 1');
    t.equal(snap.context.policyWarnings.length, 1);
    t.match(snap.context.policyWarnings[0], RETRY_ANNOTATIONS.attempts);
    t.match(snap.context.policyWarnings[0], '"three"');
  });
});

t.test('an internal failure (X-OpenFaaS-Internal) is retried whatever its status', async (t) => {
  const run = start({ invoke: async () => outcome(418, { internal: true }) });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled');
  t.same(run.effects, ['invokeFunction', 'nakConfirmed(100)']);

  const external = start({ invoke: async () => outcome(418) });
  t.equal((await external.done()).value, 'acked', 'the same status without the mark is not');
});

t.test("jitter comes from the input's random", async (t) => {
  const failing = async (mode: RetryPolicy['mode'], random: number) => {
    const run = start({
      deliveryCount: 3,
      settings: { policy: { ...policy, maxAttempts: 5, mode }, random: () => random },
      invoke: async () => outcome(502),
    });
    t.equal((await run.done()).value, 'retryScheduled');
    return run.effects.at(-1);
  };
  t.equal(await failing('exponential', 0), 'nakConfirmed(400)', 'exponential: the ceiling after attempt 3');
  t.equal(await failing('full', 0), 'nakConfirmed(100)', 'full jitter with random 0: initialWaitMs');
  t.equal(await failing('full', 0.999999), 'nakConfirmed(400)', 'full jitter with random near 1: the ceiling');
});
