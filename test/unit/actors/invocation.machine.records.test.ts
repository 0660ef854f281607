import t from 'tap';
import { createActor, waitFor } from 'xstate';
import { withEffects } from '../../../actors/invocation.machine.js';
import type { InvocationEffects } from '../../../actors/invocation.effects.js';
import type { FunctionOutcome, Invocation, MessageHandle, RecordRequest } from '../../../actors/invocation.types.js';
import type { RetryPolicy } from '../../../actors/retry.policy.js';
import { deliverySettings, fakeOutcome, NO_RETRIES, quietHandle } from '../../helpers/machine-fakes.js';
import { deferred } from '../../helpers/deferred.js';
import { testInvocation } from '../../helpers/invocations.js';
import type { AbortLike } from '../../../actors/abort-handle.js';

/** The machine owns settlement: it records the invocation before the ack, and `running` when told. */

const NOW_MS = 5_000;

function outcome(status: number): FunctionOutcome {
  return fakeOutcome(status, { startedAtMs: 4_000, durationMs: 7 });
}

interface Scenario {
  invocation?: Invocation;
  deliveryCount?: number;
  policy?: RetryPolicy;
  cancelRequested?: boolean;
  effects?: Partial<InvocationEffects>;
}

function start(s: Scenario = {}) {
  const order: string[] = [];
  const records: RecordRequest[] = [];
  const message = quietHandle(s.deliveryCount ?? 1, { nak: () => order.push('nak'), ack: () => order.push('ack') });
  const machine = withEffects({
    invokeFunction: async () => outcome(200),
    deliverCallback: async () => void order.push('callback'),
    deadLetter: async () => void order.push('deadLetter'),
    record: async (request) => {
      order.push(`record ${request.state}`);
      records.push(request);
    },
    ...s.effects,
  });
  const actor = createActor(machine, {
    input: {
      message,
      invocation: s.invocation ?? testInvocation(),
      ...deliverySettings(s.policy ?? NO_RETRIES, NOW_MS, { cancelRequested: s.cancelRequested ?? false }),
    },
  });
  actor.start();
  const done = () => waitFor(actor, (snap) => snap.status === 'done', { timeout: 2000 });
  return { actor, order, records, done };
}

t.test('success: callback, then the final record, then the ack', async (t) => {
  const run = start();
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.order, ['callback', 'record succeeded', 'ack']);
  const [record] = run.records;
  t.equal(record?.state, 'succeeded');
  t.equal(record?.attempt, 1);
  t.equal(record?.outcome?.status, 200);
  t.equal(record?.startedAtMs, 4_000, "the function call's start");
  t.equal(record?.error, undefined);
});

t.test('a non-retryable status is recorded as failed', async (t) => {
  const run = start({ effects: { invokeFunction: async () => outcome(400) } });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(
    run.records.map((r) => [r.state, r.outcome?.status]),
    [['failed', 400]],
  );
});

t.test('a transport failure on its last attempt is recorded as deadLettered, with its error', async (t) => {
  const run = start({ effects: { invokeFunction: async () => ({ ...outcome(503), transportError: 'could not reach function "fn"' }) } });
  await run.done();
  t.same(
    run.records.map((r) => [r.state, r.error]),
    [['deadLettered', 'could not reach function "fn"']],
  );
});

t.test('a dead letter is recorded as deadLettered after the dead-letter write, before the ack', async (t) => {
  const policy: RetryPolicy = { ...NO_RETRIES, maxAttempts: 2, retryStatuses: new Set([502]) };
  const run = start({ deliveryCount: 2, policy, effects: { invokeFunction: async () => outcome(502) } });
  const snap = await run.done();
  t.equal(snap.value, 'deadLettered');
  t.same(run.order, ['deadLetter', 'callback', 'record deadLettered', 'ack']);
  t.equal(run.records[0]?.attempt, 2);
});

t.test('a scheduled retry is recorded as retrying once the nak is confirmed, and not acked', async (t) => {
  const policy: RetryPolicy = { ...NO_RETRIES, maxAttempts: 3, retryStatuses: new Set([502]) };
  const run = start({ policy, effects: { invokeFunction: async () => outcome(502) } });
  const snap = await run.done();
  t.equal(snap.value, 'retryScheduled');
  t.same(run.order, ['nak', 'record retrying']);
});

t.test('a cancellation asked before delivery is recorded as cancelled without calling the function', async (t) => {
  let called = false;
  const run = start({
    cancelRequested: true,
    effects: {
      invokeFunction: async () => {
        called = true;
        return outcome(200);
      },
    },
  });
  const snap = await run.done();
  t.equal(snap.value, 'cancelled');
  t.notOk(called);
  t.same(run.order, ['callback', 'record cancelled', 'ack']);
});

t.test('a final record that cannot be written is reported, and the invocation is acked all the same', async (t) => {
  const run = start({
    effects: {
      record: async () => {
        throw new Error('no leader for the bucket');
      },
    },
  });
  const snap = await run.done();
  t.equal(snap.value, 'acked', 'leaving it unacked would run the function again');
  t.equal(snap.context.recordError, 'no leader for the bucket');
  t.equal(snap.context.settleError, undefined);
  t.same(run.order, ['callback', 'ack']);
});

t.test('`running` while invoking records running once, with the delivery time; not again, not after', async (t) => {
  const call = deferred<FunctionOutcome>();
  const run = start({ invocation: testInvocation({ callbackUrl: undefined }), effects: { invokeFunction: () => call.promise } });
  t.equal(run.actor.getSnapshot().value, 'invoking');
  run.actor.send({ type: 'running' });
  run.actor.send({ type: 'running' });
  t.same(
    run.records.map((r) => [r.state, r.startedAtMs, r.outcome]),
    [['running', NOW_MS, undefined]],
    'one running record, started at the delivery',
  );
  call.resolve(outcome(200));
  await run.done();
  t.same(
    run.records.map((r) => r.state),
    ['running', 'succeeded'],
  );
});

t.test('an OpenFaaS QueueRequest (no gateway wrote its queued record) is recorded running as its call starts; an envelope is not', async (t) => {
  for (const [original, expected] of [
    [{ data: new Uint8Array(0) }, ['running']],
    [undefined, []],
  ] as const) {
    const call = deferred<FunctionOutcome>();
    const run = start({ invocation: testInvocation({ original }), effects: { invokeFunction: () => call.promise } });
    t.equal(run.actor.getSnapshot().value, 'invoking');
    t.same(
      run.records.map((r) => r.state),
      expected,
    );
    run.actor.send({ type: 'running' });
    call.resolve(outcome(200));
    await run.done();
    t.same(
      run.records.map((r) => r.state),
      ['running', 'succeeded'],
      'one running record either way',
    );
  }
});

t.test('`cancel` while invoking aborts the function call and records cancelled', async (t) => {
  let signal: AbortLike | undefined;
  const run = start({
    effects: {
      invokeFunction: (_request, s) => {
        signal = s;
        return new Promise<FunctionOutcome>((_resolve, reject) => s.addEventListener('abort', () => reject(s.reason)));
      },
    },
  });
  run.actor.send({ type: 'cancel' });
  const snap = await run.done();
  t.equal(signal?.aborted, true, 'the call was aborted');
  t.equal(snap.value, 'cancelled');
  t.same(run.order, ['callback', 'record cancelled', 'ack']);
});

t.test('`release` while invoking aborts the call and gives the message back without a record', async (t) => {
  let signal: AbortLike | undefined;
  const naks: number[] = [];
  const run = start({
    effects: {
      invokeFunction: (_request, s) => {
        signal = s;
        return new Promise<FunctionOutcome>(() => undefined);
      },
    },
  });
  const message = run.actor.getSnapshot().context.message as MessageHandle & { nak: (ms: number) => void };
  message.nak = (ms) => void naks.push(ms);
  run.actor.send({ type: 'release' });
  const snap = await run.done();
  t.equal(snap.value, 'released');
  t.equal(signal?.aborted, true);
  t.same(naks, [0], 'nak with no delay');
  t.same(run.records, [], 'another worker records it');
});
