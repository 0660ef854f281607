import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { isTimeout, timeLimit } from '../../../src/http/client.js';

// The regression: node 20's AbortSignal.any([parent, AbortSignal.timeout(ms)]) lost its timeout
// to a garbage collection, so the gateway's /function/ route let a 3 s call through a 1 s
// annotation (nodejs/node#57736). The deadline must fire whatever the collector does meanwhile.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Resolves on the next turn of the timers' phase. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

t.test('a deadline fires with a TimeoutError although the collector ran meanwhile', async (t) => {
  const parent = new AbortController();
  const { signal } = timeLimit(parent.signal, 30);
  const aborted = once(signal, 'abort');
  for (let i = 0; i < 5; i++) {
    gc();
    await tick();
  }
  // Bounded, so a lost deadline fails here rather than at tap's own timeout.
  const bound = new AbortController();
  await Promise.race([aborted, sleep(2_000, undefined, { signal: bound.signal }).catch(() => undefined)]);
  bound.abort();
  t.ok(signal.aborted, 'aborted within 2 s of a 30 ms deadline');
  t.ok(isTimeout(signal), 'the deadline, not the parent');
  t.equal((signal.reason as DOMException | undefined)?.name, 'TimeoutError');
  t.notOk(parent.signal.aborted);
});

t.test("the parent's abort comes through with its reason, and is not a timeout", async (t) => {
  const parent = new AbortController();
  const { signal } = timeLimit(parent.signal, 60_000);
  const reason = new Error('the caller went away');
  parent.abort(reason);
  t.ok(signal.aborted);
  t.equal(signal.reason, reason);
  t.notOk(isTimeout(signal));
});

t.test('an already aborted parent gives an aborted signal at once', async (t) => {
  const parent = new AbortController();
  parent.abort('gone');
  const { signal } = timeLimit(parent.signal, 60_000);
  t.ok(signal.aborted);
  t.equal(signal.reason, 'gone');
});

t.test('clear stops the timer and lets go of the parent', async (t) => {
  const parent = new AbortController();
  const limit = timeLimit(parent.signal, 1);
  limit.clear();
  // A timer of 1 ms would have fired by the time one of 20 ms has.
  await sleep(20);
  parent.abort();
  t.notOk(limit.signal.aborted, 'neither the timer nor the parent reaches a cleared deadline');
});

t.test('without a parent, only the deadline aborts it', async (t) => {
  const { signal } = timeLimit(undefined, 5);
  await once(signal, 'abort');
  t.ok(isTimeout(signal));
});
