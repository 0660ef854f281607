import t from 'tap';
import type { FunctionOutcome } from '../../../actors/invocation.types.js';
import {
  backoffBounds,
  backoffDelayMs,
  parseRetryAfterMs,
  parseRetryStatuses,
  retryDelayMs,
  shouldRetry,
  type BackoffMode,
  type RetryPolicy,
} from '../../../actors/retry.policy.js';
import { DEFAULT_RETRY_POLICY, NO_RETRIES } from '../../helpers/machine-fakes.js';

const MODES: readonly BackoffMode[] = ['exponential', 'full', 'equal'];

function outcome(status: number, extra: { transportError?: string; internal?: boolean; retryAfter?: string } = {}) {
  const o = { status, body: new Uint8Array(), startedAtMs: 0, durationMs: 1, ...extra };
  return o as FunctionOutcome;
}

const fixed = (value: number) => () => value;
const sorted = (set: ReadonlySet<number> | undefined) => (set === undefined ? undefined : [...set].sort((a, b) => a - b));

/** A small policy whose ranges are narrow enough that random 0.999 lands on the upper end. */
const small: RetryPolicy = { maxAttempts: 10, retryStatuses: new Set([502]), initialWaitMs: 100, maxWaitMs: 800, mode: 'exponential' };

// 2015-10-21T07:28:00Z, the RFC's example date, as the injected clock.
const NOW = Date.UTC(2015, 9, 21, 7, 28, 0);

t.test('defaults: OpenFaaS Pro values; NO_RETRIES is one attempt; both frozen', async (t) => {
  t.match(DEFAULT_RETRY_POLICY, { maxAttempts: 10, initialWaitMs: 10_000, maxWaitMs: 120_000, mode: 'exponential' });
  t.same(sorted(DEFAULT_RETRY_POLICY.retryStatuses), [408, 429, 500, 502, 503, 504]);
  t.match(NO_RETRIES, { maxAttempts: 1, initialWaitMs: 0, maxWaitMs: 0, mode: 'exponential' });
  t.equal(NO_RETRIES.retryStatuses.size, 0);
  t.ok(Object.isFrozen(DEFAULT_RETRY_POLICY));
  t.ok(Object.isFrozen(NO_RETRIES));
});

t.test('shouldRetry: table', async (t) => {
  const none: RetryPolicy = { ...DEFAULT_RETRY_POLICY, retryStatuses: new Set() };
  const rows: [string, FunctionOutcome, number, RetryPolicy, boolean][] = [
    ['listed 502, attempt 1 of 10', outcome(502), 1, DEFAULT_RETRY_POLICY, true],
    ['listed 502, attempt 9 of 10', outcome(502), 9, DEFAULT_RETRY_POLICY, true],
    ['listed 502, attempt 10 of 10 is the last', outcome(502), 10, DEFAULT_RETRY_POLICY, false],
    ['listed 502, past the last attempt', outcome(502), 11, DEFAULT_RETRY_POLICY, false],
    ['listed 408', outcome(408), 1, DEFAULT_RETRY_POLICY, true],
    ['listed 429', outcome(429), 1, DEFAULT_RETRY_POLICY, true],
    ['listed 500', outcome(500), 1, DEFAULT_RETRY_POLICY, true],
    ['listed 503', outcome(503), 1, DEFAULT_RETRY_POLICY, true],
    ['listed 504', outcome(504), 1, DEFAULT_RETRY_POLICY, true],
    ['unlisted 200', outcome(200), 1, DEFAULT_RETRY_POLICY, false],
    ['unlisted 400', outcome(400), 1, DEFAULT_RETRY_POLICY, false],
    ['unlisted 404', outcome(404), 1, DEFAULT_RETRY_POLICY, false],
    ['unlisted 501', outcome(501), 1, DEFAULT_RETRY_POLICY, false],
    ['unlisted 505', outcome(505), 1, DEFAULT_RETRY_POLICY, false],
    ['transport error, no statuses listed', outcome(504, { transportError: 'timed out' }), 1, none, true],
    ['transport error with a 2xx status', outcome(200, { transportError: 'body truncated' }), 2, none, true],
    ['transport error on the last attempt', outcome(503, { transportError: 'refused' }), 10, none, false],
    ['X-OpenFaaS-Internal, status unlisted', outcome(500, { internal: true }), 1, none, true],
    ['X-OpenFaaS-Internal with a 2xx status', outcome(202, { internal: true }), 1, none, true],
    ['X-OpenFaaS-Internal on the last attempt', outcome(502, { internal: true }), 10, none, false],
    ['internal: false, status unlisted', outcome(500, { internal: false }), 1, none, false],
    ['NO_RETRIES, listed nowhere', outcome(502), 1, NO_RETRIES, false],
    ['NO_RETRIES, transport error', outcome(503, { transportError: 'refused' }), 1, NO_RETRIES, false],
    ['NO_RETRIES, internal', outcome(500, { internal: true }), 1, NO_RETRIES, false],
  ];
  for (const [name, o, attempt, policy, expected] of rows) t.equal(shouldRetry(o, attempt, policy), expected, name);
});

t.test('backoffBounds: exact ranges per mode', async (t) => {
  // [attempt, ceiling, equal's lower bound] for initial 100ms, max 800ms.
  const rows: [number, number, number][] = [
    [1, 100, 100],
    [2, 200, 100],
    [3, 400, 200],
    [4, 800, 400],
    [5, 800, 400],
  ];
  for (const [attempt, ceiling, equalMin] of rows) {
    t.same(backoffBounds(attempt, { ...small, mode: 'exponential' }), { minMs: ceiling, maxMs: ceiling }, `exponential #${attempt}`);
    t.same(backoffBounds(attempt, { ...small, mode: 'full' }), { minMs: 100, maxMs: ceiling }, `full #${attempt}`);
    t.same(backoffBounds(attempt, { ...small, mode: 'equal' }), { minMs: equalMin, maxMs: ceiling }, `equal #${attempt}`);
  }
  t.same(backoffBounds(2, { ...small, initialWaitMs: 3, mode: 'equal' }), { minMs: 3, maxMs: 6 }, 'equal with an odd ceiling');
  t.same(backoffBounds(3, { ...small, initialWaitMs: 3, mode: 'equal' }), { minMs: 6, maxMs: 12 });
});

t.test('backoffDelayMs: scripted random stays inside the bounds and reaches both ends', async (t) => {
  // [mode, attempt, random, expected]
  const rows: [BackoffMode, number, number, number][] = [
    ['exponential', 3, 0, 400],
    ['exponential', 3, 0.5, 400],
    ['exponential', 3, 0.999, 400],
    ['full', 3, 0, 100],
    ['full', 3, 0.5, 250],
    ['full', 3, 0.999, 400],
    ['full', 5, 0.999, 800],
    ['equal', 3, 0, 200],
    ['equal', 3, 0.5, 300],
    ['equal', 3, 0.999, 400],
    ['equal', 5, 0, 400],
    ['equal', 5, 0.999, 800],
    ['full', 1, 0.999, 100],
    ['equal', 1, 0.5, 100],
  ];
  for (const [mode, attempt, random, expected] of rows) {
    t.equal(backoffDelayMs(attempt, { ...small, mode }, fixed(random)), expected, `${mode} #${attempt} random ${random}`);
  }
});

t.test('backoffDelayMs: integer, inside backoffBounds and [min(initial, max), max] for every mode and attempt', async (t) => {
  const policies: RetryPolicy[] = [DEFAULT_RETRY_POLICY, small, { ...small, initialWaitMs: 3, maxWaitMs: 1001 }, { ...small, initialWaitMs: 5000, maxWaitMs: 1000 }];
  const randoms = [0, 0.5, 0.999, 0.9999999, 1, Number.NaN, -1];
  for (const base of policies) {
    for (const mode of MODES) {
      const policy = { ...base, mode };
      for (let attempt = 1; attempt <= 12; attempt++) {
        const { minMs, maxMs } = backoffBounds(attempt, policy);
        t.ok(minMs <= maxMs && Number.isInteger(minMs) && Number.isInteger(maxMs), `bounds ${minMs}..${maxMs}`);
        t.ok(minMs >= Math.min(policy.initialWaitMs, policy.maxWaitMs) && maxMs <= policy.maxWaitMs);
        for (const r of randoms) {
          const delay = backoffDelayMs(attempt, policy, fixed(r));
          const label = `${mode} ${policy.initialWaitMs}/${policy.maxWaitMs} #${attempt} random ${r}: ${delay}`;
          if (!(Number.isInteger(delay) && delay >= minMs && delay <= maxMs)) t.fail(label);
        }
        t.equal(backoffDelayMs(attempt, policy, fixed(0)), minMs, `random 0 gives the lower end (${mode} #${attempt})`);
        t.equal(backoffDelayMs(attempt, policy, fixed(0.9999999)), maxMs, `random →1 gives the upper end (${mode} #${attempt})`);
      }
    }
  }
  t.same(backoffBounds(1, { ...small, initialWaitMs: 5000, maxWaitMs: 1000, mode: 'full' }), { minMs: 1000, maxMs: 1000 }, 'initial > max: max');
});

t.test('backoffDelayMs: the default exponential sequence is 10s, 20s, 40s, 80s, 120s, 120s', async (t) => {
  const delays = [1, 2, 3, 4, 5, 6].map((attempt) => backoffDelayMs(attempt, DEFAULT_RETRY_POLICY, fixed(0.7)));
  t.same(delays, [10_000, 20_000, 40_000, 80_000, 120_000, 120_000]);
});

t.test('backoffDelayMs: capped at maxWaitMs and no overflow for huge attempts', async (t) => {
  for (const attempt of [31, 64, 1000, 1025, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY]) {
    t.same(backoffBounds(attempt, DEFAULT_RETRY_POLICY), { minMs: 120_000, maxMs: 120_000 }, `exponential #${attempt}`);
    t.same(backoffBounds(attempt, { ...DEFAULT_RETRY_POLICY, mode: 'full' }), { minMs: 10_000, maxMs: 120_000 }, `full #${attempt}`);
    t.same(backoffBounds(attempt, { ...DEFAULT_RETRY_POLICY, mode: 'equal' }), { minMs: 60_000, maxMs: 120_000 }, `equal #${attempt}`);
    t.equal(backoffDelayMs(attempt, DEFAULT_RETRY_POLICY, fixed(0)), 120_000);
  }
  const uncapped: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxWaitMs: Number.POSITIVE_INFINITY };
  for (const attempt of [1000, Number.MAX_SAFE_INTEGER]) {
    const delay = backoffDelayMs(attempt, uncapped, fixed(0));
    t.ok(Number.isSafeInteger(delay) && delay > 0, `attempt ${attempt} without a cap is still a finite integer: ${delay}`);
  }
  t.ok(backoffDelayMs(40, uncapped, fixed(0)) >= backoffDelayMs(20, uncapped, fixed(0)), 'and never shrinks');
  t.equal(backoffDelayMs(1, NO_RETRIES, fixed(0.5)), 0, 'NO_RETRIES waits 0');
});

t.test('backoffDelayMs: an attempt below 1 (or NaN) counts as the first', async (t) => {
  for (const attempt of [0, -3, Number.NaN]) t.equal(backoffDelayMs(attempt, DEFAULT_RETRY_POLICY, fixed(0)), 10_000, `${attempt}`);
});

t.test('parseRetryAfterMs: delta-seconds', async (t) => {
  t.equal(parseRetryAfterMs('120', NOW), 120_000);
  t.equal(parseRetryAfterMs(' 5 ', NOW), 5000, 'surrounding spaces');
  t.equal(parseRetryAfterMs('0', NOW), 0);
  t.equal(parseRetryAfterMs('99999999999999999999', NOW), Number.MAX_SAFE_INTEGER, 'huge but valid');
});

t.test('parseRetryAfterMs: HTTP-date relative to the injected now', async (t) => {
  t.equal(parseRetryAfterMs('Wed, 21 Oct 2015 07:28:30 GMT', NOW), 30_000, 'IMF-fixdate');
  t.equal(parseRetryAfterMs('Wed, 21 Oct 2015 07:28:30 GMT', NOW + 10_000), 20_000, 'depends on now, not the wall clock');
  t.equal(parseRetryAfterMs('Wed, 21 Oct 2015 07:28:30 GMT', NOW + 0.5), 30_000, 'whole milliseconds, rounded up');
  t.equal(parseRetryAfterMs('Wednesday, 21-Oct-15 07:29:00 GMT', NOW), 60_000, 'obsolete RFC 850 form');
  t.equal(parseRetryAfterMs('Wed Oct 21 07:30:00 2015', NOW), 120_000, 'obsolete asctime form');
  t.equal(parseRetryAfterMs('Fri Nov  6 08:49:37 2015', NOW), Date.UTC(2015, 10, 6, 8, 49, 37) - NOW, 'asctime, one-digit day');
  t.equal(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:00 GMT', NOW), Date.UTC(2026, 0, 1) - NOW, 'years ahead');
});

t.test('parseRetryAfterMs: a past date is 0', async (t) => {
  t.equal(parseRetryAfterMs('Wed, 21 Oct 2015 07:27:00 GMT', NOW), 0);
  t.equal(parseRetryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT', NOW), 0, 'exactly now');
  t.equal(parseRetryAfterMs('Sunday, 06-Nov-94 08:49:37 GMT', NOW), 0, 'RFC 850 two-digit year in the last century');
});

t.test('parseRetryAfterMs: absent or junk is undefined', async (t) => {
  const junk = [
    undefined,
    '',
    '   ',
    'soon',
    '-5',
    '1.5',
    '5s',
    '+5',
    '0x10',
    '1e3',
    'Wed, 31 Feb 2015 07:28:30 GMT', // no such day
    'Wed, 21 Oct 2015 25:00:00 GMT', // no such hour
    'Wed, 21 Foo 2015 07:28:30 GMT',
    'Wed, 21 Oct 2015 07:28:30 +0000',
    'Wed, 21 Oct 2015 07:28:30 gmt',
    '2015-10-21T07:28:30Z',
  ];
  for (const value of junk) t.equal(parseRetryAfterMs(value, NOW), undefined, JSON.stringify(value));
});

t.test('retryDelayMs: Retry-After replaces the back-off, within [initialWaitMs, maxWaitMs]', async (t) => {
  const p = DEFAULT_RETRY_POLICY;
  t.equal(retryDelayMs(outcome(429, { retryAfter: '30' }), 1, p, NOW, fixed(0)), 30_000, 'longer than back-off #1 (10s)');
  t.equal(retryDelayMs(outcome(429, { retryAfter: '30' }), 4, p, NOW, fixed(0)), 30_000, 'shorter than back-off #4 (80s)');
  t.equal(retryDelayMs(outcome(503, { retryAfter: '1' }), 3, p, NOW, fixed(0)), 10_000, 'floor: initialWaitMs');
  t.equal(retryDelayMs(outcome(503, { retryAfter: '0' }), 1, p, NOW, fixed(0)), 10_000, 'floor for 0');
  t.equal(retryDelayMs(outcome(503, { retryAfter: '3600' }), 1, p, NOW, fixed(0)), 120_000, 'ceiling: maxWaitMs');
  t.equal(retryDelayMs(outcome(503, { retryAfter: 'Wed, 21 Oct 2015 07:28:45 GMT' }), 1, p, NOW, fixed(0)), 45_000, 'date');
  t.equal(retryDelayMs(outcome(503, { retryAfter: 'Wed, 21 Oct 2015 07:00:00 GMT' }), 5, p, NOW, fixed(0)), 10_000, 'past date: floor');
});

t.test('retryDelayMs: without a usable Retry-After it is backoffDelayMs', async (t) => {
  const full: RetryPolicy = { ...DEFAULT_RETRY_POLICY, mode: 'full' };
  t.equal(retryDelayMs(outcome(502), 2, DEFAULT_RETRY_POLICY, NOW, fixed(0)), 20_000, 'absent');
  t.equal(retryDelayMs(outcome(502, { retryAfter: 'later' }), 3, DEFAULT_RETRY_POLICY, NOW, fixed(0)), 40_000, 'junk');
  t.equal(retryDelayMs(outcome(502, { retryAfter: 'later' }), 3, full, NOW, fixed(0)), 10_000, 'junk, full: random 0');
  t.equal(retryDelayMs(outcome(502), 3, full, NOW, fixed(0.9999999)), 40_000, 'absent, full: random →1');
});

t.test('parseRetryStatuses', async (t) => {
  t.same(sorted(parseRetryStatuses('429')), [429]);
  t.same(sorted(parseRetryStatuses('408,429,500,502,503,504')), [408, 429, 500, 502, 503, 504]);
  t.same(sorted(parseRetryStatuses(' 502 , 429 ')), [429, 502], 'spaces around entries');
  t.same(sorted(parseRetryStatuses('429,429')), [429], 'duplicates collapse');
  t.same(sorted(parseRetryStatuses('100,599')), [100, 599], 'the ends of the range');
  for (const bad of ['', ' ', '99', '600', '4290', 'abc', '429,,502', '429,', ',429', '42a', '+429', '4e2', '429;502']) {
    t.equal(parseRetryStatuses(bad), undefined, JSON.stringify(bad));
  }
});
