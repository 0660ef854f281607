import t from 'tap';
import { adaptiveSignal, isThrottle, throttleDelayMs } from '../../../actors/throttle.policy.js';
import type { RetryPolicy } from '../../../actors/retry.policy.js';
import { DEFAULT_RETRY_POLICY, fakeOutcome as outcome } from '../../helpers/machine-fakes.js';

const NOW = Date.UTC(2026, 0, 1);

t.test('isThrottle: 429, or 503 with Retry-After; never a transport error or an OpenFaaS internal failure', async (t) => {
  const check = (name: string, got: boolean, want: boolean) => t.equal(got, want, name);
  check('429', isThrottle(outcome(429)), true);
  check('429 with Retry-After', isThrottle(outcome(429, { retryAfter: '3' })), true);
  check('503 with Retry-After', isThrottle(outcome(503, { retryAfter: '3' })), true);
  check('503 without Retry-After', isThrottle(outcome(503)), false);
  check('503 with an empty Retry-After', isThrottle(outcome(503, { retryAfter: ' ' })), false);
  check('503 transport error', isThrottle(outcome(503, { transportError: 'refused' })), false);
  check('429 marked X-OpenFaaS-Internal', isThrottle(outcome(429, { internal: true })), false);
  check('502 with Retry-After', isThrottle(outcome(502, { retryAfter: '3' })), false);
  check('200', isThrottle(outcome(200)), false);
});

t.test('throttleDelayMs: Retry-After as given (up to max_retry_wait), else about a second with jitter', async (t) => {
  const policy: RetryPolicy = DEFAULT_RETRY_POLICY; // 10 s first wait, 120 s at most
  t.equal(
    throttleDelayMs(outcome(429, { retryAfter: '3' }), policy, NOW, () => 0),
    3_000,
    'not raised to initial_retry_wait',
  );
  t.equal(
    throttleDelayMs(outcome(429, { retryAfter: '0' }), policy, NOW, () => 0),
    0,
  );
  t.equal(
    throttleDelayMs(outcome(429, { retryAfter: '3600' }), policy, NOW, () => 0),
    120_000,
    'capped by max_retry_wait',
  );
  t.equal(
    throttleDelayMs(outcome(429, { retryAfter: new Date(NOW + 5_000).toUTCString() }), policy, NOW, () => 0),
    5_000,
    'an HTTP-date',
  );
  t.equal(
    throttleDelayMs(outcome(429, { retryAfter: 'soon' }), policy, NOW, () => 0),
    500,
    'invalid: as if absent',
  );
  t.equal(
    throttleDelayMs(outcome(429), policy, NOW, () => 0),
    500,
  );
  t.equal(
    throttleDelayMs(outcome(429), policy, NOW, () => 0.5),
    1_000,
  );
  t.equal(
    throttleDelayMs(outcome(429), policy, NOW, () => 0.999),
    1_499,
  );
  t.equal(
    throttleDelayMs(outcome(429), policy, NOW, () => Number.NaN),
    1_000,
    'a broken random source: the middle',
  );
  t.equal(
    throttleDelayMs(outcome(429), { ...policy, initialWaitMs: 40 }, NOW, () => 0.5),
    40,
    'never longer than a failure would wait',
  );
  t.equal(
    throttleDelayMs(outcome(429), { ...policy, initialWaitMs: 0, maxWaitMs: 0 }, NOW, () => 0.5),
    0,
  );
  t.equal(
    throttleDelayMs(outcome(429), { ...policy, maxWaitMs: 700 }, NOW, () => 0.999),
    700,
    'capped by max_retry_wait',
  );
});

t.test('adaptiveSignal: what a settlement tells the limiter', async (t) => {
  t.equal(adaptiveSignal({ settlement: 'throttled', outcome: outcome(429) }), 'throttle');
  t.equal(adaptiveSignal({ settlement: 'retryScheduled', outcome: outcome(429) }), 'throttle', 'past the cap (or adaptive off) a 429 still says overloaded');
  t.equal(adaptiveSignal({ settlement: 'deadLettered', outcome: outcome(503, { retryAfter: '1' }), deadLetter: 'retriesExhausted' }), 'throttle');
  t.equal(adaptiveSignal({ settlement: 'acked', outcome: outcome(200) }), 'success');
  t.equal(adaptiveSignal({ settlement: 'acked', outcome: outcome(302) }), 'success');
  t.equal(adaptiveSignal({ settlement: 'ackFailed', outcome: outcome(200) }), 'success', 'the function answered all the same');
  t.equal(adaptiveSignal({ settlement: 'acked', outcome: outcome(404) }), 'none');
  t.equal(adaptiveSignal({ settlement: 'retryScheduled', outcome: outcome(502) }), 'none');
  t.equal(adaptiveSignal({ settlement: 'retryScheduled', outcome: outcome(503, { transportError: 'refused' }) }), 'none');
  t.equal(adaptiveSignal({ settlement: 'cancelled', outcome: outcome(499) }), 'none');
  t.equal(adaptiveSignal({ settlement: 'deadLettered', outcome: outcome(408), deadLetter: 'expired' }), 'none');
  t.equal(adaptiveSignal({ settlement: 'released' }), 'none');
  t.equal(adaptiveSignal({ settlement: 'crashed', outcome: outcome(200) }), 'none');
});
