import t from 'tap';
import { createActor, waitFor } from 'xstate';
import { withEffects } from '../../../actors/invocation.machine.js';
import type {
  CallbackRequest,
  DeadLetterRequest,
  FunctionOutcome,
  FunctionRequest,
  Invocation,
  InvocationSettings,
  RecordRequest,
} from '../../../actors/invocation.types.js';
import { retryDelayMs, type RetryPolicy } from '../../../actors/retry.policy.js';
import { testInvocation } from '../../helpers/invocations.js';
import { deliverySettings, fakeOutcome, recordingHandle } from '../../helpers/machine-fakes.js';

/**
 * Adaptive concurrency in the invocation machine: a throttle (429, or 503 with Retry-After) is
 * counted in the ledger and waits in JetStream without using an attempt; the attempt of a
 * redelivery is its delivery count less the throttled deliveries.
 */

const NOW_MS = 7_000_000;
const envelope: Invocation = testInvocation({ enqueuedAtMs: NOW_MS - 1000 });

/** Three attempts; 429, 502 and 503 retried; 100 ms first wait, 10 s at most. */
const policy: RetryPolicy = { maxAttempts: 3, retryStatuses: new Set([429, 502, 503]), initialWaitMs: 100, maxWaitMs: 10_000, mode: 'exponential' };

function outcome(status: number, extra: Partial<FunctionOutcome> = {}): FunctionOutcome {
  return fakeOutcome(status, { startedAtMs: NOW_MS, durationMs: 0, ...extra });
}

interface Scenario {
  deliveryCount?: number;
  settings?: Partial<InvocationSettings>;
  /** What the function answers. */
  answer?: FunctionOutcome;
  /** What the ledger holds (a number), or how reading it fails (an Error). */
  ledger?: number | Error;
  saveFails?: Error;
  nakFails?: Error;
}

/** One machine with adaptive concurrency on (unless the scenario's settings say off); every effect recorded in order. */
function start(s: Scenario = {}) {
  const nakFails = s.nakFails;
  const { handle, calls: effects } = recordingHandle(s.deliveryCount ?? 1, { nakConfirmed: nakFails ? () => Promise.reject(nakFails) : undefined });
  const invoked: FunctionRequest[] = [];
  const callbacks: CallbackRequest[] = [];
  const deadLetters: DeadLetterRequest[] = [];
  const records: RecordRequest[] = [];
  const saved: number[] = [];
  const machine = withEffects({
    invokeFunction: async (input) => {
      effects.push('invokeFunction');
      invoked.push(input);
      return s.answer ?? outcome(200);
    },
    deliverCallback: async (input) => {
      effects.push('deliverCallback');
      callbacks.push(input);
    },
    deadLetter: async (input) => {
      effects.push(`deadLetter(${input.reason})`);
      deadLetters.push(input);
    },
    storeResult: async () => ({ stored: true }),
    handOffCallback: async () => undefined,
    record: async (request) => void records.push(request),
    loadThrottles: async (invocation) => {
      effects.push(`loadThrottles(${invocation.callId})`);
      if (s.ledger instanceof Error) throw s.ledger;
      return s.ledger ?? 0;
    },
    saveThrottles: async (invocation, count) => {
      effects.push(`saveThrottles(${invocation.callId}, ${count})`);
      if (s.saveFails) throw s.saveFails;
      saved.push(count);
    },
  });
  const settings = deliverySettings(policy, NOW_MS, { adaptiveConcurrency: true, ...s.settings });
  const actor = createActor(machine, { input: { message: handle, invocation: envelope, ...settings } });
  actor.start();
  const done = () => waitFor(actor, (snap) => snap.status === 'done', { timeout: 2000 });
  return { actor, effects, invoked, callbacks, deadLetters, records, saved, done };
}

t.test('a 429 with Retry-After: counted in the ledger, then nak with its delay; settled as throttled, no callback, no dead letter', async (t) => {
  const run = start({ answer: outcome(429, { retryAfter: '7' }) });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.same(run.effects, ['invokeFunction', 'saveThrottles(c1, 1)', 'nakConfirmed(7000)'], 'ledger written before the nak; a first delivery reads no ledger');
  t.same(run.callbacks, []);
  t.same(run.deadLetters, []);
  t.equal(snap.context.attempt, 1);
  t.equal(snap.context.settleError, undefined);
  t.equal(snap.context.ledgerError, undefined);
  t.match(run.records.at(-1), { state: 'retrying', attempt: 1 }, 'the record says it waits');
});

t.test('a 429 without Retry-After: about a second (here the 100 ms first wait) with jitter', async (t) => {
  const run = start({ answer: outcome(429), settings: { random: () => 0.5 } });
  await run.done();
  t.same(run.effects.at(-1), 'nakConfirmed(100)', 'min(1 s, initial_retry_wait) × (0.5 + 0.5)');
  const slow = start({ answer: outcome(429), settings: { random: () => 0, policy: { ...policy, initialWaitMs: 10_000 } } });
  await slow.done();
  t.same(slow.effects.at(-1), 'nakConfirmed(500)', '1 s × 0.5');
});

t.test('a 503 with Retry-After is a throttle (the function says it is overloaded)', async (t) => {
  const run = start({ answer: outcome(503, { retryAfter: '2' }) });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.same(run.effects, ['invokeFunction', 'saveThrottles(c1, 1)', 'nakConfirmed(2000)']);
});

t.test('a 503 without Retry-After (asyncfn could not reach the function) stays an ordinary retryable failure', async (t) => {
  const failed = outcome(503, { transportError: 'connect ECONNREFUSED' });
  const run = start({ answer: failed });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled');
  t.same(run.effects, ['invokeFunction', `nakConfirmed(${retryDelayMs(failed, 1, policy, NOW_MS, () => 0.5)})`], 'no ledger write');
  const plain = start({ answer: outcome(503), deliveryCount: 3 });
  const last = await plain.done();
  t.equal(last.value, 'deadLettered', 'its last attempt is dead-lettered as before');
  t.equal(plain.deadLetters[0]?.reason, 'retriesExhausted');
});

t.test('a redelivery reads the ledger: the attempt is the delivery count less the throttled deliveries', async (t) => {
  const run = start({ deliveryCount: 6, ledger: 4 });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.effects.slice(0, 2), ['loadThrottles(c1)', 'invokeFunction'], 'read before the call');
  t.equal(run.invoked[0]?.attempt, 2, '6 deliveries, 4 throttled: attempt 2');
  t.equal(run.callbacks[0]?.attempt, 2, 'the callback says attempt 2 (X-Retry: 1)');
  t.equal(snap.context.throttledDeliveries, 4);
});

t.test('throttles do not use attempts: a 429 on what would be the last attempt is throttled, not dead-lettered', async (t) => {
  const run = start({ deliveryCount: 3, ledger: 0, answer: outcome(429) });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.same(run.deadLetters, []);
  t.same(run.saved, [1]);
  // After 9 throttled deliveries the 10th delivery is attempt 1: a 502 is retried, not exhausted.
  const later = start({ deliveryCount: 10, ledger: 9, answer: outcome(502) });
  const after = await later.done();
  t.equal(after.value, 'retryScheduled');
  t.equal(after.context.attempt, 1);
  t.equal(later.effects.at(-1), `nakConfirmed(${retryDelayMs(outcome(502), 1, policy, NOW_MS, () => 0.5)})`, "the first attempt's back-off");
});

t.test('each throttle adds one to the ledger', async (t) => {
  const run = start({ deliveryCount: 8, ledger: 7, answer: outcome(429) });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.same(run.effects, ['loadThrottles(c1)', 'invokeFunction', 'saveThrottles(c1, 8)', 'nakConfirmed(100)']);
});

t.test('past throttle_max_deliveries, throttles count as attempts again and end by the retry policy', async (t) => {
  const capped = { throttleMaxDeliveries: 3 };
  const retried = start({ deliveryCount: 4, ledger: 3, answer: outcome(429), settings: capped });
  const first = await retried.done();
  t.equal(first.value, 'retryScheduled', 'attempt 1 of 3: an ordinary retry');
  t.same(retried.saved, [], 'the ledger stays at the cap');
  const last = start({ deliveryCount: 6, ledger: 3, answer: outcome(429), settings: capped });
  const end = await last.done();
  t.equal(end.value, 'deadLettered', 'attempt 3 of 3: retries exhausted');
  t.equal(last.deadLetters[0]?.reason, 'retriesExhausted');
  t.equal(last.deadLetters[0]?.attempts, 3);
  t.equal(last.callbacks[0]?.outcome.status, 429);
  const byDefault = start({ deliveryCount: 51, ledger: 50, answer: outcome(429) });
  t.equal((await byDefault.done()).value, 'retryScheduled', 'the default cap is 50');
});

t.test('adaptive concurrency off: a 429 is an ordinary retry; a redelivery reads the ledger only for deliveries given back unworked', async (t) => {
  const run = start({ answer: outcome(429), settings: { adaptiveConcurrency: false } });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled');
  t.same(run.effects, ['invokeFunction', `nakConfirmed(${retryDelayMs(outcome(429), 1, policy, NOW_MS, () => 0.5)})`], 'no ledger write for a 429');
  const last = start({ deliveryCount: 3, ledger: 0, answer: outcome(429), settings: { adaptiveConcurrency: undefined } });
  const end = await last.done();
  t.equal(end.value, 'deadLettered', 'the third delivery is the third attempt');
  t.ok(last.effects.includes('loadThrottles(c1)'), 'the ledger is read on a redelivery');
  t.equal(last.deadLetters[0]?.attempts, 3);
  // One delivery before this one was given back unworked (a duplicate, a pull that had ended).
  const after = start({ deliveryCount: 3, ledger: 1, answer: outcome(429), settings: { adaptiveConcurrency: false } });
  const next = await after.done();
  t.equal(after.invoked[0]?.attempt, 2, 'the delivery given back is no attempt');
  t.equal(next.value, 'retryScheduled');
});

t.test('a ledger that cannot be written: nak all the same, throttled, ledgerError says the next delivery counts it', async (t) => {
  const run = start({ answer: outcome(429), saveFails: new Error('kv down') });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.equal(run.effects.at(-1), 'nakConfirmed(100)');
  t.match(snap.context.ledgerError, /throttle not recorded.*kv down/);
});

t.test('a ledger that cannot be read: every delivery counts as an attempt', async (t) => {
  const run = start({ deliveryCount: 3, ledger: new Error('timeout'), answer: outcome(502) });
  const snap = await run.done();
  t.equal(run.invoked[0]?.attempt, 3);
  t.equal(snap.value, 'deadLettered');
  t.match(snap.context.ledgerError, /not read.*timeout/);
});

t.test('a throttle nak the server did not confirm: throttled with settleError (JetStream redelivers after ack_wait)', async (t) => {
  const run = start({ answer: outcome(429), nakFails: new Error('no answer') });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.match(snap.context.settleError, /no answer/);
  t.same(run.saved, [1], 'the ledger was written before');
});

t.test('a ledger count beyond the deliveries before this one is clamped: the attempt stays ≥ 1', async (t) => {
  const run = start({ deliveryCount: 2, ledger: 40 });
  const snap = await run.done();
  t.equal(snap.context.throttledDeliveries, 1);
  t.equal(run.invoked[0]?.attempt, 1);
});

t.test('cancelled while the ledger is read: the function is not called', async (t) => {
  let release!: (n: number) => void;
  const { handle } = recordingHandle(2);
  const invoked: FunctionRequest[] = [];
  const machine = withEffects({
    invokeFunction: async (input) => {
      invoked.push(input);
      return outcome(200);
    },
    deliverCallback: async () => undefined,
    loadThrottles: () => new Promise<number>((resolve) => (release = resolve)),
  });
  const actor = createActor(machine, { input: { message: handle, invocation: envelope, ...deliverySettings(policy, NOW_MS, { adaptiveConcurrency: true }) } });
  actor.start();
  t.equal(actor.getSnapshot().value, 'loadingThrottles');
  actor.send({ type: 'cancel' });
  release(0);
  const snap = await waitFor(actor, (s) => s.status === 'done', { timeout: 2000 });
  t.equal(snap.value, 'cancelled');
  t.same(invoked, []);
});
