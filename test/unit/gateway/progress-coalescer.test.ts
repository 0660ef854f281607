import { EventEmitter } from 'node:events';
import t from 'tap';
import { waitForEvent } from '../../helpers/eventually.js';
import { coalescer } from '../../../src/gateway/progress-coalescer.js';
import { deferred } from '../../helpers/deferred.js';

t.test('one write per key per interval: reports in between wait, the latest wins, all get its result', async (t) => {
  const writes: Array<[string, number]> = [];
  const written = new EventEmitter();
  const gates: Array<ReturnType<typeof deferred<void>>> = [];
  const c = coalescer<number, string>(async (key, value) => {
    writes.push([key, value]);
    written.emit('write');
    const gate = deferred<void>();
    gates.push(gate);
    await gate.promise;
    return `wrote ${value}`;
  }, 100);
  const first = c.submit('a', 1);
  const other = c.submit('b', 9);
  t.same(
    writes,
    [
      ['a', 1],
      ['b', 9],
    ],
    'the first value of each key is written at once',
  );
  const second = c.submit('a', 2);
  const third = c.submit('a', 3);
  t.equal(writes.length, 2, 'nothing more is written while the write of "a" is in flight');
  gates[0]!.resolve();
  t.equal(await first, 'wrote 1');
  await waitForEvent(written, 'write', () => writes.length >= 3, 'the write of the waiting values', 5_000);
  t.same(writes[2], ['a', 3], 'one write for the two waiting values: the latest');
  gates[2]!.resolve();
  t.equal(await second, 'wrote 3', 'a replaced value resolves with the write that carried the newer one');
  t.equal(await third, 'wrote 3');
  gates[1]!.resolve();
  t.equal(await other, 'wrote 9');
});

t.test('a failed write rejects every request it carried; the key is free afterwards', async (t) => {
  let fail = true;
  const c = coalescer<number, number>(async (_key, value) => {
    if (fail) throw new Error('no leader');
    return value;
  }, 0);
  await t.rejects(c.submit('a', 1), /no leader/);
  fail = false;
  t.equal(await c.submit('a', 2), 2);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(c.active, 0, 'no state is kept for a key once its interval is over');
});

t.test('a report right after a write waits out the interval, then is written', async (t) => {
  const writtenAt: number[] = [];
  const c = coalescer<number, void>(async () => {
    writtenAt.push(performance.now());
  }, 50);
  await c.submit('a', 1);
  await c.submit('a', 2);
  t.equal(writtenAt.length, 2);
  t.ok(writtenAt[1]! - writtenAt[0]! >= 45, `the second write waited out the interval (${Math.round(writtenAt[1]! - writtenAt[0]!)} ms)`);
});
