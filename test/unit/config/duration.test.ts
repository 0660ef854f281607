import t from 'tap';
import { parseDurationMs } from '../../../src/config/index.js';

t.test('valid durations, in milliseconds', async (t) => {
  const valid: ReadonlyArray<[string, number]> = [
    ['60s', 60_000],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['2h', 7_200_000],
    ['1.5s', 1_500],
    ['1.1s', 1_100], // exact, not 1100.0000000000002
    ['1h2m3s4ms', 3_723_004],
    ['250us', 0.25],
    ['250µs', 0.25],
    ['1000000ns', 1],
    ['.5s', 500],
    ['+5s', 5_000],
    ['0s', 0],
    [' 60s ', 60_000],
    // A bare number is seconds, as the OpenFaaS docs write timeouts.
    ['90', 90_000],
    ['0.5', 500],
    ['0', 0],
  ];
  for (const [text, ms] of valid) t.equal(parseDurationMs(text), ms, JSON.stringify(text));
});

t.test('invalid durations are undefined', async (t) => {
  const invalid = ['abc', '-1s', '-1', '1x', '', 's', '1S', '1 s', '1s 2m', '1d', '.s', '1e3', '1m-1s', '9999999999h'];
  for (const text of invalid) {
    t.equal(parseDurationMs(text), undefined, JSON.stringify(text));
  }
});
