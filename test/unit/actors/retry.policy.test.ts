import t from 'tap';
import type { FunctionOutcome } from '../../../actors/invocation.types.js';
import { backoffDelayMs, NO_RETRIES, shouldRetry, type RetryPolicy } from '../../../actors/retry.policy.js';

const policy: RetryPolicy = {
  maxAttempts: 3,
  retryStatuses: new Set([429, 502, 503]),
  initialWaitMs: 100,
  maxWaitMs: 1000,
};

function outcome(status: number, transportError?: string): FunctionOutcome {
  return { status, body: new Uint8Array(), startedAtMs: 0, durationMs: 1, transportError };
}

t.test('shouldRetry: a retryable status is retried while attempt < maxAttempts', async (t) => {
  t.equal(shouldRetry(outcome(502), 1, policy), true, 'attempt 1 of 3');
  t.equal(shouldRetry(outcome(502), 2, policy), true, 'attempt 2 of 3');
  t.equal(shouldRetry(outcome(502), 3, policy), false, 'attempt 3 of 3 is the last');
  t.equal(shouldRetry(outcome(502), 4, policy), false, 'past the last attempt');
});

t.test('shouldRetry: only statuses listed in retryStatuses are retried', async (t) => {
  for (const status of [429, 502, 503]) t.equal(shouldRetry(outcome(status), 1, policy), true, `${status} is listed`);
  for (const status of [200, 202, 400, 404, 500, 504]) {
    t.equal(shouldRetry(outcome(status), 1, policy), false, `${status} is not listed`);
  }
});

t.test('shouldRetry: a transport error is retried whatever its status, but not past maxAttempts', async (t) => {
  const noStatuses: RetryPolicy = { ...policy, retryStatuses: new Set() };
  t.equal(shouldRetry(outcome(504, 'upstream timed out'), 1, noStatuses), true);
  t.equal(shouldRetry(outcome(503, 'connection refused'), 2, noStatuses), true);
  t.equal(shouldRetry(outcome(200, 'body truncated'), 1, noStatuses), true, 'even with a 2xx status');
  t.equal(shouldRetry(outcome(504, 'upstream timed out'), 3, noStatuses), false, 'last attempt');
});

t.test('shouldRetry: NO_RETRIES never retries', async (t) => {
  t.equal(NO_RETRIES.maxAttempts, 1);
  t.ok(Object.isFrozen(NO_RETRIES));
  for (const status of [200, 429, 500, 502, 503, 504]) {
    t.equal(shouldRetry(outcome(status), 1, NO_RETRIES), false, `status ${status}`);
  }
  t.equal(shouldRetry(outcome(503, 'connection refused'), 1, NO_RETRIES), false, 'transport error');
});

t.test('backoffDelayMs: attempt 1 waits initialWaitMs, then doubles', async (t) => {
  t.equal(backoffDelayMs(1, policy), 100);
  t.equal(backoffDelayMs(2, policy), 200);
  t.equal(backoffDelayMs(3, policy), 400);
  t.equal(backoffDelayMs(4, policy), 800);
});

t.test('backoffDelayMs: capped at maxWaitMs', async (t) => {
  t.equal(backoffDelayMs(5, policy), 1000, '1600 capped');
  t.equal(backoffDelayMs(6, policy), 1000);
  t.equal(backoffDelayMs(1, { ...policy, initialWaitMs: 5000 }), 1000, 'even the first delay');
  t.equal(backoffDelayMs(1, NO_RETRIES), 0);
});

t.test('backoffDelayMs: an attempt below 1 is treated as the first', async (t) => {
  t.equal(backoffDelayMs(0, policy), 100);
  t.equal(backoffDelayMs(-3, policy), 100);
});

t.test('backoffDelayMs: big attempts do not overflow', async (t) => {
  for (const attempt of [31, 64, 1025, 1_000_000, Number.MAX_SAFE_INTEGER]) {
    t.equal(backoffDelayMs(attempt, policy), 1000, `attempt ${attempt}`);
  }
  const uncapped: RetryPolicy = { ...policy, initialWaitMs: 1000, maxWaitMs: Number.POSITIVE_INFINITY };
  for (const attempt of [1025, Number.MAX_SAFE_INTEGER]) {
    const delay = backoffDelayMs(attempt, uncapped);
    t.ok(Number.isFinite(delay) && delay > 0, `attempt ${attempt} without a cap is still finite: ${delay}`);
  }
  t.ok(backoffDelayMs(40, uncapped) >= backoffDelayMs(20, uncapped), 'and never shrinks as attempts grow');
});
