import t from 'tap';
import { createActor, waitFor } from 'xstate';
import { withEffects } from '../../../actors/invocation.machine.js';
import type { BatchItemEnd, Invocation, RecordRequest, SettledRecord } from '../../../actors/invocation.types.js';
import type { LedgerEntry } from '../../../actors/attempt.policy.js';
import { testInvocation } from '../../helpers/invocations.js';
import { DEFAULT_RETRY_POLICY, deliverySettings, fakeOutcome, recordingHandle } from '../../helpers/machine-fakes.js';

/**
 * A stale delivery: JetStream delivers an invocation again after the attempt that settled it wrote
 * its final record (that attempt's ack was lost, or the server sent the delivery before it read
 * the ack). A redelivery reads the final record beside the ledger; settled already, it is acked,
 * and nothing runs, calls back or is recorded.
 */

const NOW_MS = 7_000_000;

interface Scenario {
  readonly deliveryCount?: number;
  readonly invocation?: Partial<Invocation>;
  /** The final record the redelivery finds (none when undefined), or how reading it fails. */
  readonly settled?: SettledRecord | Error;
  readonly ledger?: LedgerEntry;
  readonly ackFails?: Error;
  /** A `running` record of another worker, that worker's answer, and the record read after a `false` answer. */
  readonly runningOn?: { readonly worker: string; readonly held: boolean | Error; readonly then?: SettledRecord };
}

function start(s: Scenario) {
  const ackFails = s.ackFails;
  const { handle, calls: effects } = recordingHandle(s.deliveryCount ?? 2, { ackAck: ackFails ? () => Promise.reject(ackFails) : undefined });
  const records: RecordRequest[] = [];
  const batchItems: BatchItemEnd[] = [];
  const machine = withEffects({
    invokeFunction: async () => {
      effects.push('invokeFunction');
      return fakeOutcome(200, { startedAtMs: NOW_MS, durationMs: 0 });
    },
    deliverCallback: async () => void effects.push('deliverCallback'),
    deadLetter: async () => void effects.push('deadLetter'),
    storeResult: async () => ({ stored: true }),
    handOffCallback: async () => undefined,
    record: async (request) => void records.push(request),
    countBatchItem: async (item) => {
      effects.push('countBatchItem');
      batchItems.push(item);
    },
    loadLedger: async () => {
      effects.push('loadLedger');
      return s.ledger;
    },
    saveLedger: async (_invocation, entry) => void effects.push(`saveLedger(${entry.attempts}, ${entry.throttled})`),
    priorRecord: async () => {
      effects.push('priorRecord');
      if (s.settled instanceof Error) throw s.settled;
      if (s.runningOn !== undefined) {
        const asked = effects.some((e) => e.startsWith('askHolder'));
        if (!asked) return { runningOn: s.runningOn.worker };
        return s.runningOn.then && { settled: s.runningOn.then };
      }
      return s.settled && { settled: s.settled };
    },
    askHolder: async (worker) => {
      effects.push(`askHolder(${worker})`);
      if (s.runningOn?.held instanceof Error) throw s.runningOn.held;
      return s.runningOn?.held ?? false;
    },
  });
  const invocation = testInvocation({ enqueuedAtMs: NOW_MS - 1000, ...s.invocation });
  const actor = createActor(machine, { input: { message: handle, invocation, ...deliverySettings(DEFAULT_RETRY_POLICY, NOW_MS) } });
  actor.start();
  const done = () => waitFor(actor, (snap) => snap.status === 'done', { timeout: 2000 });
  return { effects, records, batchItems, done };
}

t.test('a redelivery of an invocation settled already is acked: no call, no callback, no record, no ledger write', async (t) => {
  const run = start({ settled: { state: 'succeeded', attempts: 1, status: 200 } });
  const snap = await run.done();
  t.equal(snap.value, 'stale');
  t.same(run.effects, ['priorRecord', 'loadLedger', 'ackAck'], 'read beside the ledger, then acked');
  t.same(run.records, [], 'the final record stays as the settling attempt wrote it');
  t.equal(snap.context.attempt, 1, 'the attempts the record counts');
  t.equal(snap.context.outcome, undefined, 'no outcome: nothing ran');
  t.equal(snap.context.settleError, undefined);
});

t.test('every final state settles it: failed, cancelled, dead-lettered', async (t) => {
  for (const state of ['failed', 'cancelled', 'deadLettered'] as const) {
    const run = start({ settled: { state, attempts: 3 }, ledger: { attempts: 3, throttled: 0 }, deliveryCount: 4 });
    const snap = await run.done();
    t.equal(snap.value, 'stale', state);
    t.notOk(run.effects.includes('invokeFunction'), `${state}: not run`);
  }
});

t.test('a batch item is counted again before the ack (its count may be what failed; counting is idempotent per call id)', async (t) => {
  const run = start({ invocation: { batchId: 'b1' }, settled: { state: 'failed', attempts: 2, status: 500 } });
  const snap = await run.done();
  t.equal(snap.value, 'stale');
  t.same(run.effects.slice(-2), ['countBatchItem', 'ackAck']);
  t.match(run.batchItems, [{ state: 'failed', status: 500, invocation: { batchId: 'b1' } }]);
});

t.test('an ack of a stale delivery that is not confirmed is reported; JetStream delivers it again', async (t) => {
  const run = start({ settled: { state: 'succeeded', attempts: 1 }, ackFails: new Error('timeout') });
  const snap = await run.done();
  t.equal(snap.value, 'stale');
  t.equal(snap.context.settleError, 'timeout');
  t.notOk(run.effects.includes('invokeFunction'));
});

t.test('no final record: the redelivery takes its attempt and runs', async (t) => {
  const run = start({});
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.effects.slice(0, 4), ['priorRecord', 'loadLedger', 'saveLedger(2, 0)', 'invokeFunction']);
});

t.test('a final record that cannot be read lets the redelivery run, and says why', async (t) => {
  const run = start({ settled: new Error('no responders') });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.ok(run.effects.includes('invokeFunction'));
  t.equal(snap.context.ledgerError, 'final record not read, the delivery runs: no responders');
});

t.test('a first delivery reads no record: its hot path makes no extra round trip', async (t) => {
  const run = start({ deliveryCount: 1, settled: { state: 'succeeded', attempts: 1 } });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.effects.slice(0, 1), ['invokeFunction']);
  t.notOk(run.effects.includes('priorRecord'));
});

t.test('a redelivery of an invocation another worker still runs is left to it: no call, no ledger write, no record, no ack', async (t) => {
  const run = start({ runningOn: { worker: 'pod-a:1', held: true } });
  const snap = await run.done();
  t.equal(snap.value, 'heldElsewhere');
  t.same(run.effects, ['priorRecord', 'loadLedger', 'askHolder(pod-a:1)'], 'asked after the record and the ledger were read; nothing after');
  t.same(run.records, [], "the running record stays the holder's");
  t.equal(snap.context.heldBy, 'pod-a:1');
  t.equal(snap.context.attempt, 1, 'the attempt the holder runs (no ledger entry: the first)');
});

t.test('the worker named by the running record does not hold it: the record is read again, and the redelivery runs', async (t) => {
  const run = start({ runningOn: { worker: 'pod-a:1', held: false } });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.same(run.effects.slice(0, 6), ['priorRecord', 'loadLedger', 'askHolder(pod-a:1)', 'priorRecord', 'saveLedger(2, 0)', 'invokeFunction']);
});

t.test('the holder settled it between the read and its answer: the second read finds the final record, and the delivery is acked, not run', async (t) => {
  const run = start({ runningOn: { worker: 'pod-a:1', held: false, then: { state: 'succeeded', attempts: 1, status: 200 } } });
  const snap = await run.done();
  t.equal(snap.value, 'stale');
  t.same(run.effects, ['priorRecord', 'loadLedger', 'askHolder(pod-a:1)', 'priorRecord', 'ackAck']);
});

t.test('a question that fails is a worker that does not hold it: the redelivery runs', async (t) => {
  const run = start({ runningOn: { worker: 'pod-a:1', held: new Error('connection closed') } });
  const snap = await run.done();
  t.equal(snap.value, 'acked');
  t.ok(run.effects.includes('invokeFunction'));
});
