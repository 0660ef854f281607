import t from 'tap';
import { durationParam, formatDuration } from '../../../src/samples/index.js';

t.test('durationParam reads asyncfn durations, refuses junk and caps at one hour', async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['2s', 2000],
    ['500ms', 500],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['2', 2000],
    ['0.05', 50],
    ['0', 0],
    [' 3s ', 3000],
    ['1h', 3_600_000],
  ];
  for (const [raw, want] of cases) t.same(durationParam('d', raw), { ok: true, ms: want }, JSON.stringify(raw));
  for (const raw of ['', 'abc', '-1s', '1d', 's']) {
    t.match(durationParam('d', raw), { ok: false, problem: /^invalid d ".*": expected e\.g\. 2s/ }, JSON.stringify(raw));
  }
  t.same(durationParam('d', '61m'), { ok: false, problem: 'd "61m" exceeds the maximum of 1h' });
});

t.test('formatDuration prints short Go-like durations', async (t) => {
  t.equal(formatDuration(2000), '2s');
  t.equal(formatDuration(50), '50ms');
  t.equal(formatDuration(0), '0ms');
  t.equal(formatDuration(90_000), '1m30s');
  t.equal(formatDuration(1500), '1.5s');
  t.equal(formatDuration(3_600_000), '1h');
});
