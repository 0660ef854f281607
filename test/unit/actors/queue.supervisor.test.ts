import { Subscription, VirtualTimeScheduler, type SchedulerLike } from 'rxjs';
import t, { type Test } from 'tap';
import { testInvocation } from '../../helpers/invocations.js';
import { deferred, type Deferred } from '../../helpers/deferred.js';
import { FakePull, type PullRequest } from '../../helpers/fake-pull.js';
import { Inbox, settleMicrotasks } from '../../helpers/inbox.js';
import { withEffects } from '../../../actors/invocation.machine.js';
import type {
  CallbackRequest,
  DeadLetterRequest,
  FunctionOutcome,
  FunctionRequest,
  Invocation,
  InvocationSettings,
  MessageHandle,
  RecordRequest,
} from '../../../actors/invocation.types.js';
import { QueueSupervisor, type Delivery, type DrainResult, type SettlementReport } from '../../../actors/queue.supervisor.js';
import { functionPolicyOf } from '../../../src/functions/annotations.js';
import type { RetryPolicy } from '../../../actors/retry.policy.js';
import type { LedgerEntry } from '../../../actors/attempt.policy.js';
import { NO_RETRIES } from '../../helpers/machine-fakes.js';
import { adaptiveSignal } from '../../../actors/throttle.policy.js';
import type { AbortLike } from '../../../actors/abort-handle.js';

const QUEUE = 'q-test';

function envelope(callId = 'c1'): Invocation {
  return testInvocation({ callId });
}

function outcome(status = 200): FunctionOutcome {
  return { status, body: new Uint8Array(), startedAtMs: 0, durationMs: 1 };
}

/** The MessageHandle port, recording calls; working() calls are also published as events. */
class FakeHandle implements MessageHandle {
  readonly calls: string[] = [];
  readonly extended = new Inbox<void>('working()');
  constructor(readonly deliveryCount = 1) {}
  working(): void {
    this.calls.push('working');
    this.extended.push();
  }
  nak(delayMs: number): void {
    this.calls.push(`nak(${delayMs})`);
  }
  async nakConfirmed(delayMs: number): Promise<void> {
    this.calls.push(`nakConfirmed(${delayMs})`);
  }
  term(): void {
    this.calls.push('term');
  }
  async ackAck(): Promise<void> {
    this.calls.push('ackAck');
  }
  /** Calls other than the ack extender's. */
  get settlements(): string[] {
    return this.calls.filter((c) => c !== 'working');
  }
}

interface Call {
  readonly request: FunctionRequest;
  readonly signal: AbortLike;
  readonly result: Deferred<FunctionOutcome>;
}

interface SupervisorOptions {
  maxInflight?: number;
  pullRetryDelayMs?: number;
  ackExtendIntervalMs?: number;
  scheduler?: SchedulerLike;
  policy?: RetryPolicy;
  callback?: (request: CallbackRequest) => Promise<void>;
  handlePoison?: (message: MessageHandle, reasons: readonly string[], raw: unknown) => Promise<void>;
  deadLetter?: (request: DeadLetterRequest) => Promise<void>;
  random?: () => number;
  runningAfterMs?: number;
  /** Adaptive concurrency on, and the attempt ledger's entry for every call id. */
  adaptive?: { readonly ledger: LedgerEntry };
}

/** One call of the supervisor's poison port. */
interface PoisonCall {
  readonly message: MessageHandle;
  readonly reasons: readonly string[];
  readonly raw: unknown;
}

/** One `transition` event. */
interface Transition {
  readonly queue: string;
  readonly callId: string;
  readonly state: string;
  readonly attempt: number;
}

function startSupervisor(t: Test, opts: SupervisorOptions = {}) {
  const maxInflight = opts.maxInflight ?? 4;
  const calls = new Inbox<Call>('an invokeFunction call');
  const callbacks: CallbackRequest[] = [];
  const running = new Inbox<RecordRequest>('a running record');
  const machine = withEffects({
    record: async (request) => {
      if (request.state === 'running') running.push(request);
    },
    invokeFunction: (input, signal) => {
      const result = deferred<FunctionOutcome>();
      calls.push({ request: input, signal, result });
      return result.promise;
    },
    deliverCallback: async (input) => {
      callbacks.push(input);
      await opts.callback?.(input);
    },
    handOffCallback: async () => {},
    deadLetter: async (input) => {
      await opts.deadLetter?.(input);
    },
    // Without `adaptive`, no ledger: every delivery is an attempt.
    ...(opts.adaptive && { loadLedger: async () => opts.adaptive?.ledger, saveLedger: async () => undefined }),
  });
  const source = new FakePull<Delivery>(maxInflight);
  const settingsAskedFor: Invocation[] = [];
  const poisonHandled = new Inbox<PoisonCall>('a handlePoison call');
  const transitions: Transition[] = [];
  const settled = new Inbox<SettlementReport>('a settled report');
  const started = new Inbox<{ queue: string; invocation: Invocation; attempt: number }>('a started event');
  const poison = new Inbox<{ queue: string; reasons: readonly string[] }>('a poison event');
  const pullFailed = new Inbox<{ queue: string; error: unknown }>('a pullFailed event');
  const duplicates: Array<{ queue: string; callId: string }> = [];
  const supervisor = new QueueSupervisor({
    queue: QUEUE,
    maxInflight,
    ackExtendIntervalMs: opts.ackExtendIntervalMs ?? 60_000,
    pull: source.pull,
    machine,
    settingsFor: (invocation): InvocationSettings => {
      settingsAskedFor.push(invocation);
      return {
        policy: opts.policy ?? NO_RETRIES,
        cancelRequested: false,
        nowMs: 1_000_000,
        random: opts.random ?? (() => 0.5),
        deadLetterNonRetryable: false,
        adaptiveConcurrency: opts.adaptive !== undefined,
      };
    },
    handlePoison: (message, reasons, raw) => {
      poisonHandled.push({ message, reasons, raw });
      return opts.handlePoison ? opts.handlePoison(message, reasons, raw) : Promise.resolve();
    },
    pullRetryDelayMs: opts.pullRetryDelayMs,
    runningAfterMs: opts.runningAfterMs,
    scheduler: opts.scheduler,
    events: {
      started: (queue, invocation, attempt) => started.push({ queue, invocation, attempt }),
      transition: (queue, invocation, state, attempt) => transitions.push({ queue, callId: invocation.callId, state, attempt }),
      settled: (report) => settled.push(report),
      poison: (queue, reasons) => poison.push({ queue, reasons }),
      pullFailed: (queue, error) => pullFailed.push({ queue, error }),
      duplicate: (queue, invocation) => duplicates.push({ queue, callId: invocation.callId }),
    },
  });
  source.watch(t, supervisor, opts.scheduler);
  supervisor.start();

  /** Delivers `n` decodable messages on `request`; returns their handles. */
  const deliverGood = (request: PullRequest<Delivery>, n: number): FakeHandle[] =>
    Array.from({ length: n }, (_, i) => {
      const message = new FakeHandle();
      request.deliver({ message, decoded: { ok: true, invocation: envelope(`c${request.delivered + 1}-${i}`) } });
      return message;
    });

  return {
    supervisor,
    source,
    calls,
    callbacks,
    running,
    settled,
    started,
    poison,
    pullFailed,
    duplicates,
    deliverGood,
    settingsAskedFor,
    poisonHandled,
    transitions,
  };
}

t.test('the first pull asks for maxInflight', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const first = await s.source.requested.next();
  t.equal(first.max, 4);
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'one request, not one per slot');
});

t.test('running + outstanding never exceeds maxInflight; freed slots are pulled again', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  t.equal(r1.max, 4);

  s.deliverGood(r1, 4);
  t.equal(s.supervisor.running, 4);
  t.equal(r1.open, false, 'a request filled to max is closed');
  const running = [await s.calls.next(), await s.calls.next(), await s.calls.next(), await s.calls.next()];
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'no pull while every slot is busy');

  running[0]!.result.resolve(outcome());
  await s.settled.next();
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 1, 'one slot freed, one message asked for');

  s.deliverGood(r2, 1);
  const fifth = await s.calls.next();
  running[1]!.result.resolve(outcome());
  await s.settled.next();
  const r3 = await s.source.requested.next();
  t.equal(r3.max, 1);

  r3.complete(); // expired empty: the slot is still free, so ask again
  const r4 = await s.source.requested.next();
  t.equal(r4.max, 1);

  running[2]!.result.resolve(outcome());
  running[3]!.result.resolve(outcome());
  await s.settled.next();
  await s.settled.next();
  const more = [await s.source.requested.next()];
  while (more.reduce((n, r) => n + r.max, 0) < 2) more.push(await s.source.requested.next());
  t.equal(
    more.reduce((n, r) => n + r.max, 0),
    2,
    'two slots freed, two messages asked for',
  );
  await settleMicrotasks();
  t.equal(s.source.requested.backlog, 0, 'nothing more was asked for');
  t.equal(s.supervisor.running + s.source.outstanding(), 4, 'the pipeline is full again');

  fifth.result.resolve(outcome());
  await s.settled.next();
  t.same(s.source.violations, [], 'running + outstanding stayed within maxInflight');
  t.equal(s.source.highWater, 4);
});

t.test('with a request still open, a new pull waits for ceil(maxInflight/4) free slots', async (t) => {
  const s = startSupervisor(t, { maxInflight: 8 });
  const r1 = await s.source.requested.next();
  t.equal(r1.max, 8);
  s.deliverGood(r1, 6);
  t.equal(r1.open, true, 'two messages still outstanding on the open request');
  const running = await Promise.all(Array.from({ length: 6 }, () => s.calls.next()));

  running[0]!.result.resolve(outcome());
  await s.settled.next();
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'one free slot is below the batch threshold of 2');

  running[1]!.result.resolve(outcome());
  await s.settled.next();
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 2, 'two free slots reach the threshold');
  t.same(s.source.violations, []);
});

t.test('with no request open, a single free slot is pulled at once', async (t) => {
  const s = startSupervisor(t, { maxInflight: 8 });
  const r1 = await s.source.requested.next();
  s.deliverGood(r1, 8);
  t.equal(r1.open, false);
  const first = await s.calls.next();
  first.result.resolve(outcome());
  await s.settled.next();
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 1, 'below the batch threshold, but nothing else would ever free it');
  t.same(s.source.violations, []);
});

t.test('a poison delivery is handed to the poison port, reported and takes no slot', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  const bad = new FakeHandle();
  const raw = { data: new Uint8Array([1]) };
  r1.deliver({ message: bad, decoded: { ok: false, reasons: ['missing header Asyncfn-Call-Id'], raw } });
  const handled = await s.poisonHandled.next();
  t.equal(handled.message, bad);
  t.same(handled.reasons, ['missing header Asyncfn-Call-Id']);
  t.equal(handled.raw, raw, 'the undecodable message itself');
  t.same(bad.calls, [], 'the supervisor itself neither terms nor acks it');
  t.same(await s.poison.next(), { queue: QUEUE, reasons: ['missing header Asyncfn-Call-Id'] });
  t.equal(s.supervisor.running, 0, 'not running');

  s.deliverGood(r1, 3);
  t.equal(s.supervisor.running, 3);
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 1, "the poison message's slot is pulled again");
  await Promise.all([s.calls.next(), s.calls.next(), s.calls.next()]);
  await settleMicrotasks();
  t.equal(s.calls.backlog, 0, 'the poison message was never invoked');
  t.equal(s.settled.backlog, 0, 'and never reported as settled');
  t.same(s.source.violations, []);
});

t.test('a settled invocation is reported with its settlement and outcome', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  const message = new FakeHandle(2);
  const invocation = envelope('c-report');
  r1.deliver({ message, decoded: { ok: true, invocation } });
  t.same(await s.started.next(), { queue: QUEUE, invocation, attempt: 2 });
  const call = await s.calls.next();
  t.same(call.request, { invocation, attempt: 2 });

  const result = outcome(201);
  call.result.resolve(result);
  const report = await s.settled.next();
  t.equal(report.queue, QUEUE);
  t.equal(report.invocation, invocation);
  t.equal(report.attempt, 2);
  t.equal(report.settlement, 'acked');
  t.equal(report.outcome, result);
  t.equal(report.callbackError, undefined);
  t.equal(report.settleError, undefined);
  t.equal(report.deadLetter, undefined);
  t.same(report.policyWarnings, []);
  t.same(message.settlements, ['ackAck']);
  t.equal(s.callbacks[0]?.outcome, result, 'the callback got it too');
  t.same(s.settingsAskedFor, [invocation], 'the settings are chosen per invocation');
  t.equal(s.supervisor.running, 0);
});

t.test('a retried invocation settles as retryScheduled and frees its slot', async (t) => {
  const policy: RetryPolicy = { maxAttempts: 3, retryStatuses: new Set([502]), initialWaitMs: 50, maxWaitMs: 1000, mode: 'exponential' };
  const s = startSupervisor(t, { maxInflight: 1, policy });
  const r1 = await s.source.requested.next();
  const [message] = s.deliverGood(r1, 1);
  (await s.calls.next()).result.resolve(outcome(502));
  const report = await s.settled.next();
  t.equal(report.settlement, 'retryScheduled');
  t.same(message!.settlements, ['nakConfirmed(50)']);
  t.equal((await s.source.requested.next()).max, 1);
});

t.test('adaptive concurrency: a throttled redelivery settles as throttled; the report carries what a limiter needs', async (t) => {
  const policy: RetryPolicy = { maxAttempts: 3, retryStatuses: new Set([502]), initialWaitMs: 50, maxWaitMs: 1000, mode: 'exponential' };
  const s = startSupervisor(t, { maxInflight: 2, policy, adaptive: { ledger: { attempts: 0, throttled: 2 } } });
  const r1 = await s.source.requested.next();
  const redelivered = new FakeHandle(3);
  r1.deliver({ message: redelivered, decoded: { ok: true, invocation: envelope('c-throttled') } });
  const call = await s.calls.next();
  t.equal(call.request.attempt, 1, '2 throttled deliveries and no attempt before: attempt 1');
  const throttle = { ...outcome(429), startedAtMs: 123 };
  call.result.resolve(throttle);
  const report = await s.settled.next();
  t.equal(report.settlement, 'throttled');
  t.equal(report.attempt, 1);
  t.equal(report.throttledDeliveries, 2, 'the throttles before this delivery');
  t.equal(report.outcome, throttle, "its start time is the outcome's startedAtMs");
  t.equal(adaptiveSignal(report), 'throttle');
  t.same(redelivered.settlements, ['nakConfirmed(50)'], 'min(1 s, initial_retry_wait 50 ms) × (0.5 + random 0.5)');
  const [first] = s.deliverGood(await s.source.requested.next(), 1);
  (await s.calls.next()).result.resolve(outcome(200));
  const ok = await s.settled.next();
  t.equal(ok.settlement, 'acked');
  t.equal(ok.throttledDeliveries, 0);
  t.equal(adaptiveSignal(ok), 'success');
  t.same(first!.settlements, ['ackAck']);
});

t.test('a crashed machine is reported as crashed, leaves its message unsettled and frees its slot', async (t) => {
  // Full jitter draws a random delay; a throwing source of randomness makes the machine crash on retry.
  const policy: RetryPolicy = { maxAttempts: 3, retryStatuses: new Set([502]), initialWaitMs: 50, maxWaitMs: 1000, mode: 'full' };
  const random = (): number => {
    throw new Error('no entropy');
  };
  const s = startSupervisor(t, { maxInflight: 1, policy, random });
  const r1 = await s.source.requested.next();
  const message = new FakeHandle(2);
  r1.deliver({ message, decoded: { ok: true, invocation: envelope() } });
  (await s.calls.next()).result.resolve(outcome(502));
  const report = await s.settled.next();
  t.equal(report.settlement, 'crashed');
  t.equal(report.invocation.callId, 'c1');
  t.same(message.settlements, [], 'neither acked nor nak-ed: JetStream redelivers after ack_wait');
  t.equal(s.supervisor.running, 0);
  t.equal((await s.source.requested.next()).max, 1);
});

t.test('in-flight messages are extended by the ack extender', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4, ackExtendIntervalMs: 10 });
  const r1 = await s.source.requested.next();
  const [message] = s.deliverGood(r1, 1);
  await message!.extended.next();
  await message!.extended.next();
  t.ok(message!.calls.filter((c) => c === 'working').length >= 2, 'working() called on every sweep');
  t.same(message!.settlements, [], 'nothing else while running');
});

t.test('an invocation still calling its function runningAfterMs after delivery is told `running`, once; a finished one is not', async (t) => {
  const scheduler = new VirtualTimeScheduler();
  const s = startSupervisor(t, { maxInflight: 4, scheduler, runningAfterMs: 250 });
  const r1 = await s.source.requested.next();
  s.deliverGood(r1, 2);
  const quick = await s.calls.next();
  const slow = await s.calls.next();
  quick.result.resolve(outcome(200));
  await s.settled.next();

  scheduler.maxFrames = 249;
  scheduler.flush();
  await settleMicrotasks();
  t.equal(s.running.backlog, 0, 'nothing before runningAfterMs');
  scheduler.maxFrames = 250;
  scheduler.flush();
  const record = await s.running.next();
  t.equal(record.invocation.callId, slow.request.invocation.callId, 'only the one still running');
  t.equal(record.startedAtMs, 1_000_000, 'started at its delivery');

  scheduler.maxFrames = 5_000;
  scheduler.flush();
  await settleMicrotasks();
  t.equal(s.running.backlog, 0, 'told once, not at every sweep');
  slow.result.resolve(outcome(200));
  await s.settled.next();
});

t.test('a failed pull is reported and retried after pullRetryDelayMs', async (t) => {
  const retryDelayMs = 1000;
  const clock = new VirtualTimeScheduler();
  const s = startSupervisor(t, { maxInflight: 4, pullRetryDelayMs: retryDelayMs, scheduler: clock });
  const r1 = await s.source.requested.next();
  s.deliverGood(r1, 1);
  const error = new Error('connection lost');
  r1.error(error);
  t.same(await s.pullFailed.next(), { queue: QUEUE, error });

  clock.maxFrames = retryDelayMs - 1;
  clock.flush();
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'no new pull before the retry delay has passed');

  clock.maxFrames = retryDelayMs;
  clock.flush();
  const r2 = await s.source.requested.next();
  t.equal(s.source.requests.length, 2, 'one new request once it has');
  t.equal(r2.max, 3, 'asks again for the free slots only');
  t.same(s.source.violations, []);
});

t.test('drain with nothing running resolves 0 and cancels the open pull', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  t.same(await s.supervisor.drain(1000), { released: 0, unsettled: 0 });
  t.equal(r1.open, false, 'the pull request was unsubscribed');
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'no pull after drain');
});

t.test('drain waits for an invocation that finishes within grace, then never pulls again', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  const [message] = s.deliverGood(r1, 1);
  const call = await s.calls.next();

  let drained: DrainResult | undefined;
  const draining = s.supervisor.drain(10_000).then((result) => (drained = result));
  t.equal(r1.open, false, 'pulling stopped at once');
  await settleMicrotasks();
  t.equal(drained, undefined, 'still waiting for the running invocation');

  call.result.resolve(outcome());
  await draining;
  t.same(drained, { released: 0, unsettled: 0 }, 'nothing released, nothing left');
  t.same(message!.settlements, ['ackAck'], 'settled normally, not nak-ed');
  t.equal((await s.settled.next()).settlement, 'acked');
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'the freed slot is not pulled again');
});

t.test('drain releases an invocation that outlives the grace period', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  const [message] = s.deliverGood(r1, 1);
  const call = await s.calls.next();

  t.same(await s.supervisor.drain(20), { released: 1, unsettled: 0 });
  t.same(message!.settlements, ['nak(0)'], 'given back with no delay');
  t.equal(call.signal.aborted, true, 'the function call was aborted');
  const report = await s.settled.next();
  t.equal(report.settlement, 'released');
  t.equal(s.supervisor.running, 0);
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'no pull after drain');
});

t.test('drain leaves an invocation that is delivering its callback to finish, and counts it unsettled', async (t) => {
  const inCallback = deferred<void>();
  const callbackDone = deferred<void>();
  const s = startSupervisor(t, {
    maxInflight: 4,
    callback: () => {
      inCallback.resolve();
      return callbackDone.promise;
    },
  });
  const r1 = await s.source.requested.next();
  const [message] = s.deliverGood(r1, 1);
  const call = await s.calls.next();
  call.result.resolve(outcome());
  await inCallback.promise;

  t.same(await s.supervisor.drain(20), { released: 0, unsettled: 1 });
  t.same(message!.settlements, [], 'not nak-ed: releasing it would run the function again');
  t.equal(call.signal.aborted, false);
  t.equal(s.supervisor.running, 1, 'still running');

  callbackDone.resolve();
  const report = await s.settled.next();
  t.equal(report.settlement, 'acked', 'the callback finished and the message was acked');
  t.same(message!.settlements, ['ackAck']);
  t.equal(s.calls.backlog, 0, 'the function ran once');
});

t.test('cancel(callId) aborts a running invocation, which reports 499 and settles as cancelled', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  const message = new FakeHandle();
  r1.deliver({ message, decoded: { ok: true, invocation: envelope('c-cancel') } });
  const call = await s.calls.next();

  t.equal(s.supervisor.cancel('c-cancel'), true, 'it was running here');
  t.equal(call.signal.aborted, true, 'the function call was aborted');
  const report = await s.settled.next();
  t.equal(report.settlement, 'cancelled');
  t.equal(report.outcome?.status, 499);
  t.equal(s.callbacks[0]?.outcome.status, 499, 'the callback says so');
  t.same(message.settlements, ['ackAck']);
  t.equal(s.supervisor.running, 0);
  t.equal(s.supervisor.cancel('c-cancel'), false, 'no longer running once settled');
});

t.test('inFlight() lists what runs now from the one registry: state, attempt, lane, delivery time; a settled one is gone', async (t) => {
  const holding = deferred<void>();
  t.teardown(() => holding.resolve());
  const s = startSupervisor(t, { maxInflight: 4, callback: (req) => (req.invocation.callId === 'c-b' ? holding.promise : Promise.resolve()) });
  const r1 = await s.source.requested.next();
  const before = Date.now();
  r1.deliver({ message: new FakeHandle(), decoded: { ok: true, invocation: testInvocation({ callId: 'c-a', functionName: 'alpha' }) } });
  r1.deliver({ message: new FakeHandle(), decoded: { ok: true, invocation: testInvocation({ callId: 'c-b', functionName: 'beta', namespace: 'ns' }) } });
  const [a, b] = [await s.calls.next(), await s.calls.next()];
  const after = Date.now();
  const listed = [...s.supervisor.inFlight()];
  t.same(
    listed.map(({ startedAtMs: _, ...rest }) => rest),
    [
      { callId: 'c-a', functionName: 'alpha', namespace: 'openfaas-fn', queue: QUEUE, lane: '', state: 'invoking', attempt: 1 },
      { callId: 'c-b', functionName: 'beta', namespace: 'ns', queue: QUEUE, lane: '', state: 'invoking', attempt: 1 },
    ],
  );
  t.ok(
    listed.every((i) => i.startedAtMs >= before && i.startedAtMs <= after),
    'delivery time on the scheduler clock',
  );

  a.result.resolve(outcome());
  await s.settled.next();
  b.result.resolve(outcome());
  await settleMicrotasks();
  t.same(
    [...s.supervisor.inFlight()].map((i) => [i.callId, i.state]),
    [['c-b', 'callback']],
    'the settled one is gone; the other shows the state its machine is in',
  );
  holding.resolve();
  await s.settled.next();
  t.same([...s.supervisor.inFlight()], []);
});

t.test('cancel(callId) of an invocation not running here returns false and touches nothing', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  const [message] = s.deliverGood(r1, 1);
  const call = await s.calls.next();
  t.equal(s.supervisor.cancel('unknown'), false);
  t.equal(call.signal.aborted, false);
  call.result.resolve(outcome());
  t.equal((await s.settled.next()).settlement, 'acked');
  t.same(message!.settlements, ['ackAck']);
});

t.test('a poison message still being dead-lettered takes no slot', async (t) => {
  const handling = deferred<void>();
  t.teardown(() => handling.resolve());
  const s = startSupervisor(t, { maxInflight: 1, handlePoison: () => handling.promise });
  const r1 = await s.source.requested.next();
  t.equal(r1.max, 1);
  const bad = new FakeHandle();
  r1.deliver({ message: bad, decoded: { ok: false, reasons: ['bad version'], raw: 'raw' } });
  await s.poisonHandled.next();
  t.equal(s.supervisor.running, 0);
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 1, 'the only slot is pulled again while handlePoison is pending');
  s.deliverGood(r2, 1);
  const call = await s.calls.next();
  t.equal(call.request.invocation.callId, 'c1-0');
  t.same(bad.calls, []);
  t.same(s.source.violations, []);
});

t.test('handlePoison rejecting: pullFailed is reported and the message nak-ed after pullRetryDelayMs', async (t) => {
  const error = new Error('dead-letter stream unavailable');
  const s = startSupervisor(t, { maxInflight: 2, pullRetryDelayMs: 250, handlePoison: () => Promise.reject(error) });
  const r1 = await s.source.requested.next();
  const bad = new FakeHandle();
  r1.deliver({ message: bad, decoded: { ok: false, reasons: ['bad version'], raw: 'raw' } });
  t.same(await s.pullFailed.next(), { queue: QUEUE, error });
  t.same(bad.calls, ['nak(250)'], 'left for redelivery, not termed');
  t.equal(s.supervisor.running, 0);
  t.equal(s.settled.backlog, 0, 'never reported as settled');
});

t.test('a second delivery of a call id running here is kept in flight (its deadline extended), not nak-ed, and not started', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4, ackExtendIntervalMs: 30_000 });
  const r1 = await s.source.requested.next();
  const first = new FakeHandle(1);
  const second = new FakeHandle(2);
  r1.deliver({ message: first, decoded: { ok: true, invocation: envelope('c-dup') } });
  const call = await s.calls.next();
  r1.deliver({ message: second, decoded: { ok: true, invocation: envelope('c-dup') } });

  // A nak would pull the message's one ack deadline in to its delay, and JetStream would deliver it
  // again (maybe to another worker) unless a sweep came first; working() moves it a whole ack_wait away.
  t.same(second.calls, ['working']);
  t.same(s.duplicates, [{ queue: QUEUE, callId: 'c-dup' }], 'reported; nothing is recorded: it started no attempt');
  t.equal(s.supervisor.running, 1, 'one machine');
  t.equal(s.settingsAskedFor.length, 1, 'no settings asked for the duplicate');
  await s.started.next();
  await settleMicrotasks();
  t.equal(s.started.backlog, 0, 'started once');
  t.equal(s.calls.backlog, 0, 'the function was not called again');

  call.result.resolve(outcome());
  const report = await s.settled.next();
  t.equal(report.settlement, 'acked');
  t.same(first.settlements, ['ackAck'], 'the running one settles the message');
  await settleMicrotasks();
  t.equal(s.settled.backlog, 0, 'one settled report');
  t.same(second.calls, ['working'], 'nothing more on the duplicate: the running attempt settled the message');
  t.same(s.source.violations, []);
});

/** A handle whose retry nak is confirmed only when the test says so. */
class SlowNakHandle extends FakeHandle {
  readonly confirmed = deferred<void>();
  override async nakConfirmed(delayMs: number): Promise<void> {
    this.calls.push(`nakConfirmed(${delayMs})`);
    await this.confirmed.promise;
  }
}

t.test("a retry's redelivery that overtakes the confirmation of its nak is the next attempt, run once the first is done", async (t) => {
  const policy: RetryPolicy = { maxAttempts: 3, retryStatuses: new Set([502]), initialWaitMs: 50, maxWaitMs: 1000, mode: 'exponential' };
  const s = startSupervisor(t, { maxInflight: 4, ackExtendIntervalMs: 30_000, policy });
  const r1 = await s.source.requested.next();
  const first = new SlowNakHandle(1);
  r1.deliver({ message: first, decoded: { ok: true, invocation: envelope('c-retry') } });
  (await s.calls.next()).result.resolve(outcome(502));
  await settleMicrotasks();
  t.same(first.calls, ['nakConfirmed(50)'], 'the retry is nak-ed; its confirmation has not come back yet');

  // JetStream redelivers after the back-off, before the first machine heard that its nak is on the server.
  const second = new FakeHandle(2);
  r1.deliver({ message: second, decoded: { ok: true, invocation: envelope('c-retry') } });
  await settleMicrotasks();
  t.same(second.calls, [], 'not nak-ed as a duplicate: that would spend an attempt on nothing');
  t.equal(s.calls.backlog, 0, 'not started while the first machine is still retrying');

  first.confirmed.resolve();
  t.equal((await s.settled.next()).settlement, 'retryScheduled');
  const call = await s.calls.next();
  t.equal(call.request.attempt, 2, 'the second attempt runs');
  call.result.resolve(outcome());
  t.equal((await s.settled.next()).settlement, 'acked');
  t.same(second.settlements, ['ackAck']);
  t.same(s.source.violations, []);
});

t.test('a transition a whole sweep interval after the last sweep extends every message in flight, though no timer ran (one long I/O phase)', async (t) => {
  // A clock that moves while no timer ever fires: thousands of HTTP responses handled in one I/O phase.
  let now = 0;
  const noTimers: SchedulerLike = { now: () => now, schedule: () => new Subscription() };
  const s = startSupervisor(t, { maxInflight: 4, ackExtendIntervalMs: 1000, scheduler: noTimers });
  const r1 = await s.source.requested.next();
  const [a, b, c] = s.deliverGood(r1, 3);
  const calls = [await s.calls.next(), await s.calls.next(), await s.calls.next()];

  now = 999;
  calls[0]!.result.resolve(outcome());
  t.equal((await s.settled.next()).settlement, 'acked');
  t.same([b!.calls, c!.calls], [[], []], 'within the interval: nothing extended');
  now = 1000;
  calls[1]!.result.resolve(outcome());
  t.equal((await s.settled.next()).settlement, 'acked');
  t.same(c!.calls, ['working'], 'the invocation still waiting: extended by the transition of another');
  t.same(a!.calls, ['ackAck'], 'a settled one is not');
  calls[2]!.result.resolve(outcome());
  t.equal((await s.settled.next()).settlement, 'acked');
  t.same(c!.calls, ['working', 'ackAck'], 'once per interval: its own transitions at 1000 ms swept nothing more');
});

t.test('holds: another worker asking about an invocation running here gets yes, and its deadline is extended at once', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4, ackExtendIntervalMs: 30_000 });
  const r1 = await s.source.requested.next();
  const message = new FakeHandle(1);
  r1.deliver({ message, decoded: { ok: true, invocation: testInvocation({ callId: 'c-held', enqueuedAtMs: 5 }) } });
  const call = await s.calls.next();

  t.notOk(s.supervisor.holds('c-held', 6), 'another enqueue time is another invocation');
  t.notOk(s.supervisor.holds('c-other', 5), 'a call id not running here');
  t.same(message.calls, [], 'nothing extended for a question about another invocation');
  t.ok(s.supervisor.holds('c-held', 5));
  t.same(message.calls, ['working'], 'JetStream gave up on its deadline once: moved a whole ack_wait away now');

  call.result.resolve(outcome());
  t.equal((await s.settled.next()).settlement, 'acked');
  t.notOk(s.supervisor.holds('c-held', 5), 'settled: no longer held');
});

t.test('holds: an invocation whose retry is being handed back is not held (the redelivery is its next attempt)', async (t) => {
  const policy: RetryPolicy = { maxAttempts: 3, retryStatuses: new Set([502]), initialWaitMs: 50, maxWaitMs: 1000, mode: 'exponential' };
  const s = startSupervisor(t, { maxInflight: 4, ackExtendIntervalMs: 30_000, policy });
  const r1 = await s.source.requested.next();
  const first = new SlowNakHandle(1);
  r1.deliver({ message: first, decoded: { ok: true, invocation: testInvocation({ callId: 'c-retrying', enqueuedAtMs: 5 }) } });
  (await s.calls.next()).result.resolve(outcome(502));
  await settleMicrotasks();
  t.same(first.calls, ['nakConfirmed(50)']);
  t.notOk(s.supervisor.holds('c-retrying', 5));
  t.same(first.calls, ['nakConfirmed(50)'], 'its deadline left alone: the nak decides it');
  first.confirmed.resolve();
  t.equal((await s.settled.next()).settlement, 'retryScheduled');
});

t.test('every state change is reported as a transition, in order', async (t) => {
  const s = startSupervisor(t, { maxInflight: 4 });
  const r1 = await s.source.requested.next();
  r1.deliver({ message: new FakeHandle(3), decoded: { ok: true, invocation: envelope('c-states') } });
  const call = await s.calls.next();
  call.result.resolve(outcome());
  await s.settled.next();

  const states = s.transitions.map((tr) => tr.state);
  const expected = ['invoking', 'callback', 'settling', 'acked'];
  const positions = expected.map((state) => states.indexOf(state));
  t.notOk(positions.includes(-1), `all of ${expected.join(', ')} in ${states.join(', ')}`);
  t.same(
    [...positions].sort((a, b) => a - b),
    positions,
    'in that order',
  );
  t.equal(states.at(-1), 'acked', 'the final state last');
  t.same(
    states.filter((state, i) => state === states[i - 1]),
    [],
    'no state reported twice in a row',
  );
  t.ok(s.transitions.every((tr) => tr.queue === QUEUE && tr.callId === 'c-states' && tr.attempt === 3));
});

t.test('the report carries the dead-letter reason and the policy warnings', async (t) => {
  const letters: DeadLetterRequest[] = [];
  const s = startSupervisor(t, { maxInflight: 1, deadLetter: async (request) => void letters.push(request) });
  const r1 = await s.source.requested.next();
  const [message] = s.deliverGood(r1, 1);
  const call = await s.calls.next();
  call.result.resolve({
    ...outcome(502),
    transportError: 'connection refused',
    functionPolicy: functionPolicyOf(NO_RETRIES, { 'com.openfaas.retry.backoff': 'linear' }),
  });
  const report = await s.settled.next();
  t.equal(report.settlement, 'deadLettered');
  t.equal(report.deadLetter, 'retriesExhausted');
  t.equal(letters.length, 1);
  t.equal(report.policyWarnings.length, 1);
  t.match(report.policyWarnings[0], 'com.openfaas.retry.backoff');
  t.equal(report.settleError, undefined);
  t.same(message!.settlements, ['ackAck']);
});

t.test('a dead letter that cannot be stored is reported unsettled with settleError', async (t) => {
  const s = startSupervisor(t, { maxInflight: 1, deadLetter: () => Promise.reject(new Error('no PubAck')) });
  const r1 = await s.source.requested.next();
  const [message] = s.deliverGood(r1, 1);
  (await s.calls.next()).result.resolve({ ...outcome(503), transportError: 'connection refused' });
  const report = await s.settled.next();
  t.equal(report.settlement, 'unsettled');
  t.equal(report.settleError, 'no PubAck');
  t.same(message!.settlements, [], 'left for JetStream to redeliver');
  t.equal((await s.source.requested.next()).max, 1, 'its slot is free again');
});
