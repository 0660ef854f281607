import type { FunctionOutcome } from './invocation.types.js';

/**
 * When to retry and how long to wait. Pure data and pure functions, like BullMQ's `Backoffs`, so
 * the machine decides and the tests check without a clock.
 */
export interface RetryPolicy {
  /** Total attempts including the first; 1 means no retries. */
  readonly maxAttempts: number;
  /** Function statuses worth another attempt (OpenFaaS `http_retry_codes`). */
  readonly retryStatuses: ReadonlySet<number>;
  /** Delay before the first retry, ms (OpenFaaS `initial_retry_wait`). */
  readonly initialWaitMs: number;
  /** Upper bound of any delay, ms (OpenFaaS `max_retry_wait`). */
  readonly maxWaitMs: number;
}

/** OpenFaaS CE behaviour: one attempt, the outcome goes to the callback whatever it is. */
export const NO_RETRIES: RetryPolicy = Object.freeze({
  maxAttempts: 1,
  retryStatuses: new Set<number>(),
  initialWaitMs: 0,
  maxWaitMs: 0,
});

export function shouldRetry(outcome: FunctionOutcome, attempt: number, policy: RetryPolicy): boolean {
  if (attempt >= policy.maxAttempts) return false;
  return outcome.transportError !== undefined || policy.retryStatuses.has(outcome.status);
}

/** Exponential back-off: initial × 2^(attempt−1), capped at maxWaitMs. */
export function backoffDelayMs(attempt: number, policy: RetryPolicy): number {
  const exponent = Math.max(0, attempt - 1);
  return Math.min(policy.maxWaitMs, policy.initialWaitMs * 2 ** Math.min(exponent, 30));
}
