/** How durable callback delivery retries a receiver that fails. */
export interface CallbackRetryPolicy {
  /** Total delivery attempts, counting the worker's first direct one. */
  readonly maxAttempts: number;
  readonly initialWaitMs: number;
  readonly maxWaitMs: number;
}

/** What to do after one delivery attempt of a callback. */
export type CallbackDecision =
  | { readonly action: 'delivered' }
  /** 410 Gone: the receiver wants no more; stop without a dead letter. */
  | { readonly action: 'gone' }
  | { readonly action: 'retry'; readonly delayMs: number }
  | { readonly action: 'deadLetter' };

/**
 * `status` is the receiver's answer, undefined when it could not be reached or timed out.
 * `attempt` is 1-based and includes the worker's direct attempt.
 */
export function decideCallback(status: number | undefined, attempt: number, policy: CallbackRetryPolicy): CallbackDecision {
  if (status !== undefined && status >= 200 && status < 300) return { action: 'delivered' };
  if (status === 410) return { action: 'gone' };
  if (attempt >= policy.maxAttempts) return { action: 'deadLetter' };
  const exponent = Math.min(Math.max(0, attempt - 1), 30);
  return { action: 'retry', delayMs: Math.min(policy.maxWaitMs, policy.initialWaitMs * 2 ** exponent) };
}
