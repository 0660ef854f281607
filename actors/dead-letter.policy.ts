import type { DeadLetterReason, FunctionOutcome } from './invocation.types.js';
import { shouldRetry, type RetryPolicy } from './retry.policy.js';

/** A 2xx or 3xx answer; anything else (and a transport failure) is a failure. */
export function isSuccess(outcome: FunctionOutcome): boolean {
  return outcome.transportError === undefined && outcome.status >= 200 && outcome.status < 400;
}

/**
 * Whether a final outcome (no more retries) goes to the dead-letter stream, and why.
 * Retryable failures that ran out of attempts always do; failures that were never retryable do
 * only when `nonRetryableCounts` (`dlq_non_retryable`).
 */
export function deadLetterReason(outcome: FunctionOutcome, policy: RetryPolicy, nonRetryableCounts: boolean): DeadLetterReason | undefined {
  if (isSuccess(outcome)) return undefined;
  // Attempt 0 asks only "is this outcome of a retryable kind", whatever attempts remain.
  const retryable = shouldRetry(outcome, 0, { ...policy, maxAttempts: Number.POSITIVE_INFINITY });
  if (retryable) return 'retriesExhausted';
  return nonRetryableCounts ? 'nonRetryable' : undefined;
}
