import t from 'tap';
import { testInvocation } from '../../helpers/invocations.js';
import { deferred } from '../../helpers/deferred.js';
import { createActor, waitFor } from 'xstate';
import { withEffects } from '../../../actors/invocation.machine.js';
import type {
  CallbackRequest,
  DeadLetterRequest,
  FunctionOutcome,
  FunctionRequest,
  Invocation,
  InvocationSettings,
  MessageHandle,
} from '../../../actors/invocation.types.js';
import { backoffDelayMs, type RetryPolicy } from '../../../actors/retry.policy.js';
import { deliverySettings, fakeOutcome as outcome, NO_RETRIES, recordingHandle as recordingPort, retryOn502 } from '../../helpers/machine-fakes.js';
import type { AbortLike } from '../../../actors/abort-handle.js';

const envelope: Invocation = testInvocation();

const retryPolicy: RetryPolicy = retryOn502();

/** Delivery time; distinct from every outcome's clock so a test sees which one was used. */
const NOW_MS = 1_000_000;

/** The settings of a delivery with nothing special about it. */
function settings(policy: RetryPolicy): InvocationSettings {
  return deliverySettings(policy, NOW_MS);
}

/** The narrow port, recording every call in order. */
function recordingHandle(deliveryCount: number, ackAck?: () => Promise<void>) {
  return recordingPort(deliveryCount, ackAck ? { ackAck } : {});
}

interface Scenario {
  deliveryCount?: number;
  policy?: RetryPolicy;
  invocation?: Invocation;
  invoke?: (request: FunctionRequest, signal: AbortLike) => Promise<FunctionOutcome>;
  callback?: (request: CallbackRequest) => Promise<void>;
  ackAck?: () => Promise<void>;
}

/** Starts one invocation machine whose effect slots are recording fakes. */
function start(s: Scenario = {}) {
  const { handle, calls } = recordingHandle(s.deliveryCount ?? 1, s.ackAck);
  const invoked: FunctionRequest[] = [];
  const callbacks: CallbackRequest[] = [];
  const acked: MessageHandle[] = [];
  const deadLetters: DeadLetterRequest[] = [];
  const handOffs: Array<CallbackRequest & { readonly error: string }> = [];
  const machine = withEffects({
    invokeFunction: (input, signal) => {
      invoked.push(input);
      return s.invoke ? s.invoke(input, signal) : Promise.resolve(outcome(200));
    },
    deliverCallback: async (input) => {
      callbacks.push(input);
      await s.callback?.(input);
    },
    handOffCallback: async (input) => {
      handOffs.push(input);
    },
    deadLetter: async (input) => {
      deadLetters.push(input);
    },
    ackAck: (input) => {
      acked.push(input);
      return input.ackAck();
    },
  });
  const actor = createActor(machine, {
    input: { message: handle, invocation: s.invocation ?? envelope, ...settings(s.policy ?? NO_RETRIES) },
  });
  actor.start();
  const done = () => waitFor(actor, (snap) => snap.status === 'done', { timeout: 2000 });
  return { actor, handle, calls, invoked, callbacks, acked, deadLetters, handOffs, done };
}

t.test('success with a callback URL: callback, then ackAck, then acked', async (t) => {
  const result = outcome(200);
  const run = start({ invoke: async () => result });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.invoked, [{ invocation: envelope, attempt: 1 }]);
  t.equal(run.callbacks.length, 1);
  const cb = run.callbacks[0]!;
  t.equal(cb.invocation, envelope);
  t.equal(cb.outcome, result, 'the callback gets the function outcome');
  t.equal(cb.attempt, 1);
  t.equal(cb.maxAttempts, 1);
  t.same(run.acked, [run.handle], 'ackAck receives the message handle');
  t.same(run.calls, ['ackAck'], 'no nak, no term');
  t.equal(snap.context.outcome, result);
  t.equal(snap.context.callbackError, undefined);
  t.equal(snap.context.settleError, undefined);
  t.same(run.deadLetters, [], 'no dead letter');
  t.same(run.handOffs, [], 'no callback hand-off');
});

t.test('without a callback URL the machine goes straight to settling', async (t) => {
  const run = start({ invocation: { ...envelope, callbackUrl: undefined } });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.equal(run.invoked.length, 1);
  t.equal(run.callbacks.length, 0, 'deliverCallback never called');
  t.same(run.calls, ['ackAck']);
});

t.test('the callback goes before the ack', async (t) => {
  const order: string[] = [];
  const run = start({
    callback: async () => void order.push('callback'),
    ackAck: async () => void order.push('ack'),
  });
  await run.done();
  t.same(order, ['callback', 'ack']);
});

t.test('the default ackAck slot acks through the message handle', async (t) => {
  const { handle, calls } = recordingHandle(1);
  const machine = withEffects({
    invokeFunction: async () => outcome(200),
    deliverCallback: async () => {},
  });
  const actor = createActor(machine, { input: { message: handle, invocation: envelope, ...settings(NO_RETRIES) } });
  actor.start();
  const snap = await waitFor(actor, (s) => s.status === 'done', { timeout: 2000 });
  t.equal(snap.value, 'acked');
  t.same(calls, ['ackAck']);
});

t.test('attempt comes from the delivery count', async (t) => {
  const run = start({ deliveryCount: 4, policy: { ...retryPolicy, maxAttempts: 5 } });
  const snap = await run.done();
  t.equal(snap.context.attempt, 4);
  t.equal(run.invoked[0]?.attempt, 4, 'the function request carries it');
  t.equal(run.callbacks[0]?.attempt, 4, 'the callback carries it');
  t.equal(run.callbacks[0]?.maxAttempts, 5);

  const first = start({ deliveryCount: 0 });
  t.equal(first.actor.getSnapshot().context.attempt, 1, 'never below 1');
  await first.done();
});

t.test('a retryable status with attempts left: nak with the back-off delay, no callback, no ack', async (t) => {
  const run = start({ deliveryCount: 2, policy: retryPolicy, invoke: async () => outcome(502) });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled');
  t.equal(
    backoffDelayMs(2, retryPolicy, () => 0.5),
    200,
  );
  t.same(run.calls, [`nakConfirmed(${backoffDelayMs(2, retryPolicy, () => 0.5)})`], 'nakConfirmed(200) and nothing else');
  t.equal(snap.context.settleError, undefined);
  t.equal(run.callbacks.length, 0);
  t.equal(run.acked.length, 0);
  t.equal(snap.context.outcome?.status, 502);
});

t.test('a non-retryable status is reported even when retries are allowed', async (t) => {
  const run = start({ policy: retryPolicy, invoke: async () => outcome(500) });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.equal(run.callbacks[0]?.outcome.status, 500);
  t.same(run.calls, ['ackAck']);
});

t.test('retries exhausted (attempt == maxAttempts): dead-lettered, the outcome goes to the callback and is acked', async (t) => {
  const run = start({ deliveryCount: 3, policy: retryPolicy, invoke: async () => outcome(502) });
  const snap = await run.done();
  t.equal(snap.value, 'deadLettered');
  t.equal(snap.context.deadLetter, 'retriesExhausted');
  t.equal(run.deadLetters.length, 1);
  t.equal(run.callbacks.length, 1);
  t.equal(run.callbacks[0]?.outcome.status, 502);
  t.equal(run.callbacks[0]?.attempt, 3);
  t.equal(run.callbacks[0]?.maxAttempts, 3);
  t.same(run.calls, ['ackAck'], 'no nak');
});

t.test('a transport-error outcome is retried whatever its status', async (t) => {
  const run = start({
    policy: { ...retryPolicy, retryStatuses: new Set() },
    invoke: async () => outcome(504, { transportError: 'upstream timed out' }),
  });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled');
  t.same(run.calls, ['nakConfirmed(100)']);
  t.equal(run.callbacks.length, 0);
});

t.test('invokeFunction rejecting (an adapter bug) becomes a 500 outcome with transportError', async (t) => {
  t.test('with NO_RETRIES it is dead-lettered as retriesExhausted, reported and acked', async (t) => {
    const run = start({ invocation: { ...envelope, enqueuedAtMs: 1234 }, invoke: () => Promise.reject(new Error('boom')) });
    const snap = await run.done();
    t.equal(snap.value, 'deadLettered', 'a transport error is a retryable kind; its one attempt is used up');
    t.equal(run.deadLetters[0]?.reason, 'retriesExhausted');
    const reported = run.callbacks[0]?.outcome;
    t.equal(reported?.status, 500);
    t.equal(reported?.transportError, 'boom');
    t.equal(new TextDecoder().decode(reported?.body), 'boom\n');
    t.equal(reported?.startedAtMs, NOW_MS, 'stamped with the delivery time');
    t.equal(reported?.durationMs, 0);
    t.same(run.calls, ['ackAck']);
  });
  t.test('with retries left it is retried like any transport error', async (t) => {
    const run = start({
      deliveryCount: 2,
      policy: { ...retryPolicy, retryStatuses: new Set() },
      invoke: () => Promise.reject(new Error('boom')),
    });
    const snap = await run.done();
    t.equal(snap.value, 'retryScheduled');
    t.equal(snap.context.outcome?.status, 500);
    t.equal(snap.context.outcome?.transportError, 'boom');
    t.same(run.calls, ['nakConfirmed(200)']);
    t.equal(run.callbacks.length, 0);
  });
});

t.test('a failed callback is recorded and handed off, the message still acked, the function not re-run', async (t) => {
  const run = start({ callback: () => Promise.reject(new Error('callback refused: 503')) });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.equal(snap.context.callbackError, 'callback refused: 503');
  t.equal(run.handOffs.length, 1, 'handed to durable delivery');
  t.equal(run.handOffs[0]?.error, 'callback refused: 503');
  t.equal(run.handOffs[0]?.outcome, run.callbacks[0]?.outcome, 'with the same outcome');
  t.equal(run.invoked.length, 1, 'invoked exactly once');
  t.same(run.calls, ['ackAck'], 'no nak');
});

t.test('an unconfirmed ack ends in ackFailed with settleError', async (t) => {
  const run = start({ ackAck: () => Promise.reject(new Error('the server did not confirm the ack')) });
  const snap = await run.done();
  t.equal(snap.value, 'ackFailed');
  t.equal(snap.context.settleError, 'the server did not confirm the ack');
  t.same(run.calls, ['ackAck'], 'not nak-ed: JetStream redelivers after ack_wait');
});

t.test('release while invoking: released, nak(0), and the function call is aborted', async (t) => {
  const called = deferred<AbortLike>();
  const run = start({
    policy: retryPolicy,
    invoke: (_request, signal) => {
      called.resolve(signal);
      return new Promise<FunctionOutcome>((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason));
      });
    },
  });
  const signal = await called.promise;
  t.equal(signal.aborted, false, 'running');
  t.equal(run.actor.getSnapshot().value, 'invoking');
  run.actor.send({ type: 'release' });
  const snap = await run.done();
  t.equal(snap.value, 'released');
  t.equal(signal.aborted, true, 'the abort given to invokeFunction fired');
  t.same(run.calls, ['nak(0)'], 'given back with no delay, not acked');
  t.equal(run.callbacks.length, 0);
  t.equal(snap.context.outcome, undefined);
});

t.test('release during the callback is ignored: the callback completes, then the ack', async (t) => {
  const entered = deferred<void>();
  const finish = deferred<void>();
  const run = start({
    callback: () => {
      entered.resolve();
      return finish.promise;
    },
  });
  await entered.promise;
  run.actor.send({ type: 'release' });
  t.equal(run.actor.getSnapshot().value, 'callback', 'still delivering the callback');
  finish.resolve();
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.calls, ['ackAck'], 'no nak(0)');
});
