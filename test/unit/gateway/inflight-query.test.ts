import t from 'tap';
import { BadRequestError } from '../../../src/errors.js';
import { inFlightRequestOf, wantsProgress } from '../../../src/gateway/routes/inflight.js';
import { withProgress, type InFlightView } from '../../../src/gateway/inflight.js';
import type { InFlightEntry, WorkerInFlight } from '../../../src/status/inflight.js';
import type { InvocationProgress } from '../../../src/status/records.js';

t.test('GET /system/inflight query: function and limit, each optional', async (t) => {
  t.same(inFlightRequestOf({}), { function: undefined });
  t.same(inFlightRequestOf({ function: 'fn.team' }), { function: 'fn.team' });
  t.same(inFlightRequestOf({ function: 'fn', limit: '2000' }), { function: 'fn', limit: 2000 });
  t.same(inFlightRequestOf({ limit: '1' }), { function: undefined, limit: 1 });
});

t.test('a bad query is a 400 naming what is wrong', async (t) => {
  const bad = (query: Record<string, unknown>, message: RegExp) => {
    let error: unknown;
    try {
      inFlightRequestOf(query);
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof BadRequestError, `${JSON.stringify(query)} is refused`);
    t.match((error as Error | undefined)?.message, message);
  };
  bad({ limit: '0' }, /limit must be a whole number from 1 to 2000/);
  bad({ limit: '2001' }, /limit must be a whole number from 1 to 2000/);
  bad({ limit: '1.5' }, /limit must be a whole number/);
  bad({ limit: 'ten' }, /limit must be a whole number/);
  bad({ limit: ['1', '2'] }, /limit must be a whole number/);
  bad({ function: '' }, /function must be one function name/);
  bad({ function: ['a', 'b'] }, /function must be one function name/);
  bad({ fn: 'a' }, /unknown parameter fn/);
});

t.test('progress=true asks for reported progress; false or absent does not; anything else is a 400', async (t) => {
  t.equal(wantsProgress({}), false);
  t.equal(wantsProgress({ progress: 'false' }), false);
  t.equal(wantsProgress({ progress: 'true', function: 'fn' }), true);
  t.same(inFlightRequestOf({ progress: 'true', limit: '5' }), { function: undefined, limit: 5 }, "progress is the gateway's, not sent to workers");
  for (const progress of ['yes', '1', '', ['true', 'true']]) t.throws(() => wantsProgress({ progress }), BadRequestError, `progress=${JSON.stringify(progress)}`);
});

function entry(callId: string): InFlightEntry {
  return { callId, function: 'fn', namespace: 'openfaas-fn', queue: 'faas-request', state: 'invoking', attempt: 1, startedAtMs: 1, elapsedMs: 2 };
}

function workerWith(name: string, callIds: string[]): WorkerInFlight {
  return { worker: name, at: 1, queues: [], total: callIds.length, byState: { invoking: callIds.length }, invocations: callIds.map(entry), truncated: false };
}

const HALF: InvocationProgress = { percent: 50, message: 'half way', atMs: 10 };

t.test("withProgress adds each listed invocation's reported progress, reading only listed ones", async (t) => {
  const view: InFlightView = { at: 1, total: 3, workers: [workerWith('w1', ['a', 'b']), workerWith('w2', ['c'])] };
  const asked: string[] = [];
  const out = await withProgress(view, async (id) => {
    asked.push(id);
    if (id === 'b') throw new Error('KV read failed');
    return id === 'a' ? HALF : undefined;
  });
  t.same(asked.sort(), ['a', 'b', 'c'], 'one read per listed invocation');
  t.same(out.workers[0]!.invocations[0], { ...entry('a'), progress: HALF }, 'a reported progress is added');
  t.same(out.workers[0]!.invocations[1], entry('b'), 'a failed read leaves the invocation as it was');
  t.same(out.workers[1]!.invocations[0], entry('c'), 'no progress reported: none added');
  t.equal(out.total, 3);
  t.same(view.workers[0]!.invocations[0], entry('a'), 'the gathered view is not changed');
});

t.test('withProgress reads at most maxReads records; an empty view reads none', async (t) => {
  let reads = 0;
  const read = async () => {
    reads++;
    return HALF;
  };
  const view: InFlightView = { at: 1, total: 5, workers: [workerWith('w1', ['a', 'b', 'c', 'd', 'e'])] };
  const out = await withProgress(view, read, 2);
  t.equal(reads, 2);
  t.same(
    out.workers[0]!.invocations.map((i) => i.progress?.percent),
    [50, 50, undefined, undefined, undefined],
  );
  reads = 0;
  const empty: InFlightView = { at: 1, total: 0, workers: [] };
  t.equal(await withProgress(empty, read), empty);
  t.equal(reads, 0);
});
