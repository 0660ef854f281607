import t from 'tap';
import { assign, createActor, setup } from 'xstate';
import { withEffects, type InvocationEvent } from '../../../actors/invocation.machine.js';
import type { FunctionOutcome, InvocationInput } from '../../../actors/invocation.types.js';
import { MachineRunner } from '../../../actors/machine.runner.js';
import type { RetryPolicy } from '../../../actors/retry.policy.js';
import { testInvocation } from '../../helpers/invocations.js';
import { deliverySettings, NO_RETRIES, quietHandle, retryOn502 } from '../../helpers/machine-fakes.js';

/** The invocation machine run to its end by an actor and by the runner must pass the same states and end the same. */

const RETRY: RetryPolicy = retryOn502(1000);

interface Case {
  readonly name: string;
  readonly status: number;
  readonly callback: 'ok' | 'fails' | 'none';
  readonly policy: RetryPolicy;
  readonly cancelRequested?: boolean;
  readonly deliveryCount?: number;
}

const CASES: readonly Case[] = [
  { name: 'success with a callback', status: 200, callback: 'ok', policy: NO_RETRIES },
  { name: 'success without a callback', status: 200, callback: 'none', policy: NO_RETRIES },
  { name: 'a failed callback handed off', status: 200, callback: 'fails', policy: NO_RETRIES },
  { name: 'a retry', status: 502, callback: 'ok', policy: RETRY },
  { name: 'the last attempt dead-lettered', status: 502, callback: 'ok', policy: { ...RETRY, maxAttempts: 1 }, deliveryCount: 1 },
  { name: 'cancelled before running', status: 200, callback: 'ok', policy: NO_RETRIES, cancelRequested: true },
];

function machineFor(c: Case) {
  const out: FunctionOutcome = { status: c.status, body: new Uint8Array([1]), startedAtMs: 1, durationMs: 1 };
  return withEffects({
    invokeFunction: () => Promise.resolve(out),
    deliverCallback: () => (c.callback === 'fails' ? Promise.reject(new Error('receiver down')) : Promise.resolve()),
    handOffCallback: () => Promise.resolve(),
    deadLetter: () => Promise.resolve(),
    storeResult: () => Promise.resolve({ stored: true }),
    record: () => Promise.resolve(),
  });
}

function inputFor(c: Case): InvocationInput {
  const invocation = testInvocation(c.callback === 'none' ? { callbackUrl: undefined } : {});
  return {
    invocation,
    message: quietHandle(c.deliveryCount ?? 1),
    ...deliverySettings(c.policy, 5, { cancelRequested: c.cancelRequested ?? false }),
  };
}

interface Trace {
  readonly states: string[];
  readonly final: string;
  readonly context: Record<string, unknown>;
}

/** The comparable part of a final context (no functions, no message handle). */
function comparable(context: Record<string, unknown>): Record<string, unknown> {
  const { message: _m, random: _r, running: _u, policy: _p, ...rest } = context;
  return rest;
}

function viaActor(c: Case): Promise<Trace> {
  return new Promise((resolve, reject) => {
    const states: string[] = [];
    const actor = createActor(machineFor(c), {
      input: inputFor(c),
      inspect: (e) => {
        if (e.type === '@xstate.microstep') states.push(String((e.snapshot as unknown as { value: unknown }).value));
      },
    });
    actor.subscribe({
      complete: () => {
        const snapshot = actor.getSnapshot();
        resolve({ states, final: String(snapshot.value), context: comparable(snapshot.context as unknown as Record<string, unknown>) });
      },
      error: reject,
    });
    actor.start();
  });
}

function viaRunner(c: Case): Promise<Trace> {
  return new Promise((resolve, reject) => {
    const states: string[] = [];
    new MachineRunner(machineFor(c)).start(inputFor(c), {
      done: (snapshot) => resolve({ states, final: String(snapshot.value), context: comparable(snapshot.context as unknown as Record<string, unknown>) }),
      error: reject,
      microstep: (snapshot) => states.push(String(snapshot.value)),
    });
  });
}

for (const c of CASES) {
  t.test(`${c.name}: the runner passes the same states and ends as an actor does`, async (t) => {
    const [actor, runner] = await Promise.all([viaActor(c), viaRunner(c)]);
    t.ok(runner.states.length > 0, `microsteps: ${runner.states.join(' → ')}`);
    t.same(runner.states, actor.states);
    t.equal(runner.final, actor.final);
    t.same(runner.context, actor.context);
  });
}

t.test('an event sent while the machine is busy with another is handled after it, in order', async (t) => {
  const seen: string[] = [];
  const machine = setup({ types: { events: {} as { type: 'a' } | { type: 'b' }, context: {} as { log: string[] } } }).createMachine({
    context: { log: [] },
    initial: 'one',
    states: {
      one: {
        on: {
          a: {
            target: 'two',
            actions: [assign({ log: ({ context }) => [...context.log, 'a'] }), ({ self }) => self.send({ type: 'b' }), () => seen.push('after send')],
          },
        },
      },
      two: { on: { b: { target: 'done', actions: assign({ log: ({ context }) => [...context.log, 'b'] }) } } },
      done: { type: 'final' },
    },
  });
  const ended = new Promise<string[]>((resolve, reject) => {
    const run = new MachineRunner(machine).start(undefined, { done: (s) => resolve(s.context.log), error: reject });
    run.send({ type: 'a' });
  });
  t.same(await ended, ['a', 'b']);
  t.same(seen, ['after send'], "b waited for a's actions to finish");
});

t.test('events after the final state are ignored', async (t) => {
  const machine = setup({ types: { events: {} as { type: 'go' } } }).createMachine({ initial: 'a', states: { a: { on: { go: 'end' } }, end: { type: 'final' } } });
  let done = 0;
  const run = new MachineRunner(machine).start(undefined, { done: () => (done += 1), error: () => t.fail('no error') });
  run.send({ type: 'go' });
  run.send({ type: 'go' });
  t.equal(done, 1);
  t.equal(String(run.snapshot?.value), 'end');
});

t.test('an action that throws ends the run with an error, once', async (t) => {
  const machine = setup({ types: { events: {} as { type: 'go' } } }).createMachine({
    initial: 'a',
    states: {
      a: {
        on: {
          go: {
            target: 'b',
            actions: () => {
              throw new Error('boom');
            },
          },
        },
      },
      b: {},
    },
  });
  const errors: unknown[] = [];
  const run = new MachineRunner(machine).start(undefined, { done: () => t.fail('not done'), error: (e) => errors.push(e) });
  run.send({ type: 'go' });
  run.send({ type: 'go' });
  t.equal(errors.length, 1);
  t.match(errors[0], /boom/);
});

t.test('a delayed transition is refused with a clear error: effects start from actions here', async (t) => {
  const machine = setup({}).createMachine({ initial: 'a', states: { a: { after: { 100: 'b' } }, b: {} } });
  const errors: unknown[] = [];
  new MachineRunner(machine).start(undefined, { done: () => t.fail('not done'), error: (e) => errors.push(e) });
  t.match(String(errors[0]), /a delayed event is not supported/);
});

t.test('each instance hears only its own events: results of concurrent runs do not cross', async (t) => {
  const runner = new MachineRunner(machineFor(CASES[0]!));
  const ends = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) =>
        new Promise<string>((resolve, reject) => {
          const input = { ...inputFor(CASES[0]!), invocation: testInvocation({ callId: `call-${i}` }) };
          runner.start(input, { done: (s) => resolve(s.context.invocation.callId), error: reject });
        }),
    ),
  );
  t.same(
    ends,
    Array.from({ length: 20 }, (_, i) => `call-${i}`),
  );
});

t.test('a cancel sent to one instance reaches that one only', async (t) => {
  const hold = withEffects({
    invokeFunction: (_r, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    deliverCallback: () => Promise.resolve(),
  });
  const runner = new MachineRunner(hold);
  const finals = new Map<string, string>();
  const runs = ['x', 'y'].map((id) =>
    runner.start(
      { ...inputFor(CASES[0]!), invocation: testInvocation({ callId: id }) },
      { done: (s) => finals.set(id, String(s.value)), error: (e) => t.fail(String(e)) },
    ),
  );
  runs[0]!.send({ type: 'cancel' } satisfies InvocationEvent);
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.equal(finals.get('x'), 'cancelled');
  t.equal(String(runs[1]!.snapshot?.value), 'invoking', 'the other still runs');
});
