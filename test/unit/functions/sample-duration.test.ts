import t from 'tap';
import { formatDuration, parseDurationMs } from '../../../src/samples/index.js';

t.test('parseDurationMs reads Go-like durations and bare seconds', async (t) => {
  const cases: Array<[string, number | undefined]> = [
    ['2s', 2000],
    ['500ms', 500],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['2', 2000],
    ['0.05', 50],
    ['0', 0],
    [' 3s ', 3000],
    ['', undefined],
    ['abc', undefined],
    ['-1s', undefined],
    ['1d', undefined],
    ['s', undefined],
    ['1s2', undefined],
    ['1.s', undefined],
  ];
  for (const [raw, want] of cases) t.equal(parseDurationMs(raw), want, JSON.stringify(raw));
});

t.test('formatDuration prints short Go-like durations', async (t) => {
  t.equal(formatDuration(2000), '2s');
  t.equal(formatDuration(50), '50ms');
  t.equal(formatDuration(0), '0ms');
  t.equal(formatDuration(90_000), '1m30s');
  t.equal(formatDuration(1500), '1.5s');
  t.equal(formatDuration(3_600_000), '1h');
});
