import t from 'tap';
import { once } from 'node:events';
import { deadline } from '../../../src/http/client.js';

t.test('aborts with a TimeoutError when the time limit passes, and says so', async (t) => {
  const limit = deadline(undefined, 5);
  await once(limit.signal, 'abort');
  t.ok(limit.timedOut());
  t.equal((limit.signal.reason as DOMException).name, 'TimeoutError');
  limit.clear();
});

t.test('follows the parent, which is not a timeout', async (t) => {
  const parent = new AbortController();
  const limit = deadline(parent.signal, 60_000);
  parent.abort(new Error('cancelled'));
  t.ok(limit.signal.aborted);
  t.notOk(limit.timedOut());
  t.equal((limit.signal.reason as Error).message, 'cancelled');
  limit.clear();
});

t.test('an already aborted parent aborts at once', async (t) => {
  const limit = deadline(AbortSignal.abort('gone'), 60_000);
  t.ok(limit.signal.aborted);
  t.equal(limit.signal.reason, 'gone');
  limit.clear();
});

t.test('clear() disarms both the timer and the parent', async (t) => {
  const parent = new AbortController();
  const limit = deadline(parent.signal, 5);
  limit.clear();
  parent.abort();
  // The timer would have fired by the time a later one does.
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.notOk(limit.signal.aborted, 'neither the parent nor the timer aborted it');
  t.notOk(limit.timedOut());
});
