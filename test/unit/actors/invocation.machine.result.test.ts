import t from 'tap';
import { createActor, waitFor } from 'xstate';
import { withEffects } from '../../../actors/invocation.machine.js';
import type { FunctionOutcome, Invocation, ResultStorage, StoreResultRequest } from '../../../actors/invocation.types.js';
import { functionPolicyOf, STORE_RESULT_ANNOTATION } from '../../../src/functions/annotations.js';
import { testInvocation } from '../../helpers/invocations.js';
import { deliverySettings, NO_RETRIES, quietHandle } from '../../helpers/machine-fakes.js';

/** Kept results: the caller asks with X-Store-Result, or the function with its annotation. */

interface Run {
  invocation: Invocation;
  outcome?: FunctionOutcome;
  store?: (req: StoreResultRequest) => Promise<ResultStorage>;
}

async function run(r: Run) {
  const order: string[] = [];
  const stored: StoreResultRequest[] = [];
  const outcome = r.outcome ?? { status: 201, contentType: 'text/plain', body: new TextEncoder().encode('made'), startedAtMs: 1, durationMs: 2 };
  const machine = withEffects({
    invokeFunction: async () => outcome,
    deliverCallback: async () => void order.push('callback'),
    storeResult: async (input) => {
      order.push('store');
      stored.push(input);
      return r.store ? r.store(input) : { stored: true };
    },
  });
  const actor = createActor(machine, {
    input: {
      message: quietHandle(1, { ack: () => order.push('ack') }),
      invocation: r.invocation,
      ...deliverySettings(NO_RETRIES, 0),
    },
  });
  actor.start();
  const snap = await waitFor(actor, (s) => s.status === 'done', { timeout: 2000 });
  return { snap, order, stored, outcome };
}

t.test('asked with X-Store-Result: stored before the callback and the ack', async (t) => {
  const { snap, order, stored, outcome } = await run({ invocation: { ...testInvocation(), storeResult: true } });
  t.equal(snap.value, 'acked');
  t.same(order, ['store', 'callback', 'ack']);
  t.equal(stored[0]?.outcome, outcome);
  t.same(snap.context.resultStorage, { stored: true });
});

t.test('asked by the function annotation', async (t) => {
  const outcome = {
    status: 200,
    body: new Uint8Array(0),
    startedAtMs: 1,
    durationMs: 1,
    functionPolicy: functionPolicyOf(NO_RETRIES, { [STORE_RESULT_ANNOTATION]: 'true' }),
  };
  const { order } = await run({ invocation: { ...testInvocation(), callbackUrl: undefined }, outcome });
  t.same(order, ['store', 'ack']);
});

t.test('not asked: nothing stored', async (t) => {
  const { order, snap } = await run({ invocation: testInvocation() });
  t.same(order, ['callback', 'ack']);
  t.equal(snap.context.resultStorage, undefined);
});

t.test('a failed write is reported and the invocation still settles (the function is not run again)', async (t) => {
  const { snap, order } = await run({
    invocation: { ...testInvocation(), storeResult: true },
    store: async () => {
      throw new Error('KV unavailable');
    },
  });
  t.equal(snap.value, 'acked');
  t.same(order, ['store', 'callback', 'ack']);
  t.same(snap.context.resultStorage, { stored: false, reason: 'KV unavailable' });
});
