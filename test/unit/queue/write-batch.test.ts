import t from 'tap';
import { deferWrite, MAX_BATCH } from '../../../src/queue/write-batch.js';

const phaseEnd = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

t.test('writes deferred while one event is handled run together after the phase, in order, never within deferWrite', async (t) => {
  const ran: number[] = [];
  for (let i = 0; i < 3; i++) deferWrite(() => ran.push(i));
  t.same(ran, [], 'nothing runs within deferWrite');
  await Promise.resolve();
  t.same(ran, [], 'nor once the event is done: the batch waits for the end of the phase');
  await phaseEnd();
  t.same(ran, [0, 1, 2]);
});

t.test('a full batch runs once the event being handled is done; the writes after it wait for the end of the phase', async (t) => {
  const ran: number[] = [];
  for (let i = 0; i < MAX_BATCH; i++) deferWrite(() => ran.push(i));
  t.equal(ran.length, 0, 'nothing runs within deferWrite, a full batch neither');
  deferWrite(() => ran.push(MAX_BATCH));
  await Promise.resolve();
  t.equal(ran.length, MAX_BATCH + 1, 'the full batch and what joined it before the microtask ran');
  t.same(
    ran,
    Array.from({ length: MAX_BATCH + 1 }, (_, i) => i),
    'in order',
  );
  deferWrite(() => ran.push(-1));
  await Promise.resolve();
  t.equal(ran.at(-1), MAX_BATCH, 'a write after the full batch waits');
  await phaseEnd();
  t.equal(ran.at(-1), -1, 'and runs at the end of the phase');
});

t.test('a write deferred while a batch runs goes to the next batch', async (t) => {
  const ran: string[] = [];
  deferWrite(() => {
    ran.push('first');
    deferWrite(() => ran.push('deferred by the first'));
  });
  deferWrite(() => ran.push('second'));
  await phaseEnd();
  t.same(ran, ['first', 'second']);
  await phaseEnd();
  t.same(ran, ['first', 'second', 'deferred by the first']);
});
