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
import type { LedgerEntry } from '../../../actors/attempt.policy.js';
import { retryDelayMs, type RetryPolicy } from '../../../actors/retry.policy.js';
import { testInvocation } from '../../helpers/invocations.js';
import { deliverySettings, fakeOutcome, recordingHandle } from '../../helpers/machine-fakes.js';

/**
 * The attempt ledger in the invocation machine: a redelivery's attempt is the next after those
 * recorded, and it is recorded before the function runs; a first delivery reads and writes
 * nothing. Adaptive concurrency: a throttle (429, or 503 with Retry-After) gives its attempt back
 * in the ledger, counts one more throttle, and waits in JetStream.
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
  /** What the ledger holds (none when undefined), or how reading it fails (an Error). */
  ledger?: LedgerEntry | Error;
  saveFails?: Error;
  nakFails?: Error;
  /** The function's policy as a redelivery reads it (none: not provided), or how reading it fails. */
  functionPolicy?: RetryPolicy | Error;
}

/** One machine with adaptive concurrency on (unless the scenario's settings say off); every effect recorded in order. */
function start(s: Scenario = {}) {
  const nakFails = s.nakFails;
  const { handle, calls: effects } = recordingHandle(s.deliveryCount ?? 1, { nakConfirmed: nakFails ? () => Promise.reject(nakFails) : undefined });
  const invoked: FunctionRequest[] = [];
  const callbacks: CallbackRequest[] = [];
  const deadLetters: DeadLetterRequest[] = [];
  const records: RecordRequest[] = [];
  const saved: Required<LedgerEntry>[] = [];
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
    loadLedger: async (invocation) => {
      effects.push(`loadLedger(${invocation.callId})`);
      if (s.ledger instanceof Error) throw s.ledger;
      return s.ledger;
    },
    saveLedger: async (invocation, entry) => {
      effects.push(`saveLedger(${invocation.callId}, ${entry.attempts}, ${entry.throttled})`);
      if (s.saveFails) throw s.saveFails;
      saved.push(entry);
    },
    ...(s.functionPolicy !== undefined && {
      policyOf: async () => {
        if (s.functionPolicy instanceof Error) throw s.functionPolicy;
        return s.functionPolicy!;
      },
    }),
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
  t.same(
    run.effects,
    ['invokeFunction', 'saveLedger(c1, 0, 1)', 'nakConfirmed(7000)'],
    'no attempt and one throttle, written before the nak; a first delivery reads no ledger',
  );
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
  t.same(run.effects, ['invokeFunction', 'saveLedger(c1, 0, 1)', 'nakConfirmed(2000)']);
});

t.test('a 503 without Retry-After (asyncfn could not reach the function) stays an ordinary retryable failure', async (t) => {
  const failed = outcome(503, { transportError: 'connect ECONNREFUSED' });
  const run = start({ answer: failed });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled');
  t.same(run.effects, ['invokeFunction', `nakConfirmed(${retryDelayMs(failed, 1, policy, NOW_MS, () => 0.5)})`], 'no ledger write');
  const plain = start({ answer: outcome(503), deliveryCount: 3, ledger: { attempts: 2, throttled: 0 } });
  const last = await plain.done();
  t.equal(last.value, 'deadLettered', 'its last attempt is dead-lettered as before');
  t.equal(plain.deadLetters[0]?.reason, 'retriesExhausted');
});

t.test('a redelivery reads the ledger and records its attempt before the call: the attempt after those recorded', async (t) => {
  const run = start({ deliveryCount: 6, ledger: { attempts: 1, throttled: 4 } });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.effects.slice(0, 3), ['loadLedger(c1)', 'saveLedger(c1, 2, 4)', 'invokeFunction'], 'read, then recorded, then called');
  t.equal(run.invoked[0]?.attempt, 2, 'one attempt recorded: attempt 2');
  t.equal(run.callbacks[0]?.attempt, 2, 'the callback says attempt 2 (X-Retry: 1)');
  t.equal(snap.context.throttledDeliveries, 4);
});

t.test('a redelivery with no entry is attempt 2, whatever the delivery count (deliveries that never arrived are no attempt)', async (t) => {
  // nats-server < 2.10.16: a retry's redelivery that met only ended pull requests is counted,
  // never sent, and sent again after ack_wait as delivery 3.
  const run = start({ deliveryCount: 3, answer: outcome(502) });
  const snap = await run.done();
  t.equal(run.invoked[0]?.attempt, 2);
  t.same(run.saved, [{ attempts: 2, throttled: 0 }]);
  t.equal(snap.value, 'retryScheduled', 'attempt 2 of 3 is retried, not dead-lettered');
});

t.test('throttles do not use attempts: a 429 on the last attempt is throttled, not dead-lettered, and gives the attempt back', async (t) => {
  const run = start({ deliveryCount: 3, ledger: { attempts: 2, throttled: 0 }, answer: outcome(429) });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.same(run.deadLetters, []);
  t.same(run.saved, [
    { attempts: 3, throttled: 0 },
    { attempts: 2, throttled: 1 },
  ]);
  // After 9 throttled deliveries and no attempt, the 10th delivery is attempt 1: a 502 is retried, not exhausted.
  const later = start({ deliveryCount: 10, ledger: { attempts: 0, throttled: 9 }, answer: outcome(502) });
  const after = await later.done();
  t.equal(after.value, 'retryScheduled');
  t.equal(after.context.attempt, 1);
  t.equal(later.effects.at(-1), `nakConfirmed(${retryDelayMs(outcome(502), 1, policy, NOW_MS, () => 0.5)})`, "the first attempt's back-off");
});

t.test('each throttle adds one to the ledger', async (t) => {
  const run = start({ deliveryCount: 8, ledger: { attempts: 0, throttled: 7 }, answer: outcome(429) });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.same(run.effects, ['loadLedger(c1)', 'saveLedger(c1, 1, 7)', 'invokeFunction', 'saveLedger(c1, 0, 8)', 'nakConfirmed(100)']);
});

t.test('past throttle_max_deliveries, throttles count as attempts again and end by the retry policy', async (t) => {
  const capped = { throttleMaxDeliveries: 3 };
  const retried = start({ deliveryCount: 4, ledger: { attempts: 0, throttled: 3 }, answer: outcome(429), settings: capped });
  const first = await retried.done();
  t.equal(first.value, 'retryScheduled', 'attempt 1 of 3: an ordinary retry');
  t.same(retried.saved, [{ attempts: 1, throttled: 3 }], 'the throttles stay at the cap; the attempt stays recorded');
  const last = start({ deliveryCount: 6, ledger: { attempts: 2, throttled: 3 }, answer: outcome(429), settings: capped });
  const end = await last.done();
  t.equal(end.value, 'deadLettered', 'attempt 3 of 3: retries exhausted');
  t.equal(last.deadLetters[0]?.reason, 'retriesExhausted');
  t.equal(last.deadLetters[0]?.attempts, 3);
  t.equal(last.callbacks[0]?.outcome.status, 429);
  const byDefault = start({ deliveryCount: 51, ledger: { attempts: 0, throttled: 50 }, answer: outcome(429) });
  t.equal((await byDefault.done()).value, 'retryScheduled', 'the default cap is 50');
});

t.test('adaptive concurrency off: a 429 is an ordinary retry; a redelivery still reads and records its attempt', async (t) => {
  const run = start({ answer: outcome(429), settings: { adaptiveConcurrency: false } });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled');
  t.same(run.effects, ['invokeFunction', `nakConfirmed(${retryDelayMs(outcome(429), 1, policy, NOW_MS, () => 0.5)})`], 'no ledger write for a 429');
  const last = start({ deliveryCount: 3, ledger: { attempts: 2, throttled: 0 }, answer: outcome(429), settings: { adaptiveConcurrency: undefined } });
  const end = await last.done();
  t.equal(end.value, 'deadLettered', 'two attempts recorded: the third is the last');
  t.same(last.effects.slice(0, 2), ['loadLedger(c1)', 'saveLedger(c1, 3, 0)'], 'the ledger is read and written on a redelivery');
  t.equal(last.deadLetters[0]?.attempts, 3);
  // The first delivery was given back unworked (it reached a pull that had just ended).
  const after = start({ deliveryCount: 2, ledger: { attempts: 0, throttled: 0 }, answer: outcome(429), settings: { adaptiveConcurrency: false } });
  const next = await after.done();
  t.equal(after.invoked[0]?.attempt, 1, 'the delivery given back is no attempt');
  t.equal(next.value, 'retryScheduled');
});

t.test('a ledger that cannot be written: nak all the same, throttled, ledgerError says the next delivery counts it', async (t) => {
  const run = start({ answer: outcome(429), saveFails: new Error('kv down') });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.equal(run.effects.at(-1), 'nakConfirmed(100)');
  t.match(snap.context.ledgerError, /throttle not recorded.*kv down/);
});

t.test("a redelivery's attempt that cannot be recorded: the function runs all the same, ledgerError says why", async (t) => {
  const run = start({ deliveryCount: 2, ledger: { attempts: 1, throttled: 0 }, saveFails: new Error('kv down') });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.equal(run.invoked[0]?.attempt, 2);
  t.match(snap.context.ledgerError, /attempt 2 not recorded.*kv down/);
});

t.test('a ledger that cannot be read: every delivery counts as an attempt', async (t) => {
  const run = start({ deliveryCount: 3, ledger: new Error('timeout'), answer: outcome(502) });
  const snap = await run.done();
  t.equal(run.invoked[0]?.attempt, 3);
  t.equal(snap.value, 'deadLettered');
  t.match(snap.context.ledgerError, /not read.*timeout/);
  t.notOk(
    run.effects.some((e) => e.startsWith('saveLedger')),
    'and nothing is written over the entry it could not read',
  );
});

t.test('a throttle nak the server did not confirm: throttled with settleError (JetStream redelivers after ack_wait)', async (t) => {
  const run = start({ answer: outcome(429), nakFails: new Error('no answer') });
  const snap = await run.done();
  t.equal(snap.value, 'throttled');
  t.match(snap.context.settleError, /no answer/);
  t.same(run.saved, [{ attempts: 0, throttled: 1 }], 'the ledger was written before');
});

t.test('cancelled while the ledger is read: the function is not called', async (t) => {
  let release!: (entry: LedgerEntry | undefined) => void;
  const { handle } = recordingHandle(2);
  const invoked: FunctionRequest[] = [];
  const machine = withEffects({
    invokeFunction: async (input) => {
      invoked.push(input);
      return outcome(200);
    },
    deliverCallback: async () => undefined,
    loadLedger: () => new Promise<LedgerEntry | undefined>((resolve) => (release = resolve)),
    saveLedger: async () => undefined,
  });
  const actor = createActor(machine, { input: { message: handle, invocation: envelope, ...deliverySettings(policy, NOW_MS, { adaptiveConcurrency: true }) } });
  actor.start();
  t.equal(actor.getSnapshot().value, 'recordingAttempt');
  actor.send({ type: 'cancel' });
  release(undefined);
  const snap = await waitFor(actor, (s) => s.status === 'done', { timeout: 2000 });
  t.equal(snap.value, 'cancelled');
  t.same(invoked, []);
});

t.test('a redelivery after the last attempt was cut off by its worker runs once more (a stalled attempt), as attempt max_attempts + 1', async (t) => {
  const run = start({ deliveryCount: 4, ledger: { attempts: 3, throttled: 0 }, functionPolicy: policy, answer: outcome(502) });
  const snap = await run.done();
  t.equal(run.invoked[0]?.attempt, 4);
  t.equal(snap.value, 'deadLettered', 'a failure there is not retried');
  t.equal(run.deadLetters[0]?.attempts, 4);
});

t.test('past that, a redelivery is dead-lettered: no call, no ledger write', async (t) => {
  const run = start({ deliveryCount: 6, ledger: { attempts: 4, throttled: 0 }, functionPolicy: policy });
  const snap = await run.done();
  t.equal(snap.value, 'deadLettered');
  t.same(run.invoked, [], 'the function is not called a fifth time');
  t.same(run.effects, ['loadLedger(c1)', 'deadLetter(retriesExhausted)', 'deliverCallback', 'ackAck']);
  t.equal(run.deadLetters[0]?.attempts, 4, 'four attempts made');
  t.equal(run.callbacks[0]?.attempt, 4, 'the callback says attempt 4 (X-Retry: 3)');
  t.equal(run.callbacks[0]?.outcome.status, 500);
  t.match(
    new TextDecoder().decode(run.callbacks[0]?.outcome.body),
    /4 attempts were started \(max_attempts 3, and one more when a worker stops mid-call\); the last did not finish/,
  );
});

t.test("the function's own max_attempts decides whether a redelivery runs", async (t) => {
  const run = start({ deliveryCount: 6, ledger: { attempts: 4, throttled: 0 }, functionPolicy: { ...policy, maxAttempts: 5 } });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.equal(run.invoked[0]?.attempt, 5, 'attempt 5 of its 5');
});

t.test('a function policy that cannot be read lets the redelivery run', async (t) => {
  const run = start({ deliveryCount: 6, ledger: { attempts: 4, throttled: 0 }, functionPolicy: new Error('resolver down') });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.equal(run.invoked[0]?.attempt, 5);
});
