import t from 'tap';
import { formatDurationMs, isoTime } from '../../../src/cli/status-nats.js';
import { DEFAULT_WAIT_MS, parseStatusArgs } from '../../../src/cli/status.js';

t.test('durations read like Go prints them, rounded to what matters at that size', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '0ms'],
    [-5, '0ms'],
    [850.4, '850ms'],
    [1_000, '1s'],
    [1_204, '1.204s'],
    [59_999, '59.999s'],
    [60_000, '1m0s'],
    [125_400, '2m5s'],
    [3_600_000, '1h0m'],
    [3 * 3_600_000 + 12 * 60_000 + 59_000, '3h12m'],
    [98 * 3_600_000, '4d2h'],
  ];
  for (const [ms, text] of cases) t.equal(formatDurationMs(ms), text, `${ms} ms`);
  t.equal(isoTime(undefined), '-');
  t.equal(isoTime(0), '-');
  t.equal(isoTime(Date.UTC(2025, 0, 1)), '2025-01-01T00:00:00.000Z');
});

t.test('status arguments: --wait alone is the default, a duration is attached with "="', async (t) => {
  t.same(parseStatusArgs(['abc']), { ok: true, value: { command: 'status', callId: 'abc', waitMs: undefined, json: false } });
  t.same(parseStatusArgs(['--wait', 'abc', '--json']), { ok: true, value: { command: 'status', callId: 'abc', waitMs: DEFAULT_WAIT_MS, json: true } });
  t.same(parseStatusArgs(['abc', '--wait=1m30s']), { ok: true, value: { command: 'status', callId: 'abc', waitMs: 90_000, json: false } });
  t.same(parseStatusArgs(['abc', '--wait=1.5']), { ok: true, value: { command: 'status', callId: 'abc', waitMs: 1_500, json: false } });
  t.same(parseStatusArgs(['-h']), { ok: true, value: { command: 'help' } });
  t.match(parseStatusArgs([]), { ok: false, error: 'missing call id' });
  t.match(parseStatusArgs(['a', 'b']), { ok: false, error: 'one call id expected, got 2' });
  t.match(parseStatusArgs(['a', '--wait=soon']), { ok: false, error: /--wait="soon" is not a positive duration/ });
  t.match(parseStatusArgs(['a', '--wait=0s']), { ok: false, error: /not a positive duration/ });
  t.match(parseStatusArgs(['a', '--nope']), { ok: false, error: /Unknown option '--nope'/ });
});
