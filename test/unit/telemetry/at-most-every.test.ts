import t from 'tap';
import { atMostEvery } from '../../../src/telemetry/at-most-every.js';

t.test('atMostEvery: the first call goes through, those within the interval are counted into the next', async (t) => {
  let clock = 1_000;
  const calls: Array<[number, string]> = [];
  const warn = atMostEvery(
    60_000,
    (skipped: number, what: string) => calls.push([skipped, what]),
    () => clock,
  );
  warn('a');
  warn('b');
  clock += 59_999;
  warn('c');
  t.same(calls, [[0, 'a']], 'one line for a burst');
  clock += 1;
  warn('d');
  warn('e');
  clock += 60_000;
  warn('f');
  t.same(calls, [
    [0, 'a'],
    [2, 'd'],
    [1, 'f'],
  ]);
});
