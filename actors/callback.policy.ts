/** How durable callback delivery retries a receiver that fails. */
export interface CallbackRetryPolicy {
  /** Total delivery attempts, counting the worker's first direct one. */
  readonly maxAttempts: number;
  readonly initialWaitMs: number;
  readonly maxWaitMs: number;
  /**
   * Receiver statuses no retry can change (`callback_permanent_codes`, default 404 and 410): the
   * callback is dead-lettered after the attempt that got one.
   */
  readonly permanentStatuses: ReadonlySet<number>;
  /**
   * Longest a callback is retried, ms (`callback_max_age`), counted from its hand-off to durable
   * delivery (right after the worker's direct attempt); 0 = no limit. Default 24 h.
   */
  readonly maxAgeMs: number;
}

/** One finished delivery attempt of a callback. */
export interface CallbackAttempt {
  /** The receiver's answer; undefined when it could not be reached or did not answer in time. */
  readonly status: number | undefined;
  /** 1-based; the worker's direct attempt is 1. */
  readonly attempt: number;
  /** How long the callback has been in durable delivery, ms. */
  readonly ageMs: number;
}

/** What to do after one delivery attempt of a callback. */
export type CallbackDecision =
  | { readonly action: 'delivered' }
  | { readonly action: 'retry'; readonly delayMs: number }
  /**
   * Stop and keep the result in the dead letters. `reason` is one line for the dead letter's
   * error; `permanent` when the receiver's answer alone says why (no last error to add).
   */
  | { readonly action: 'deadLetter'; readonly reason: string; readonly permanent: boolean };

/**
 * The callback retry policy, pure: a 2xx is delivered; a permanent status, the last attempt, or
 * an age past `maxAgeMs` is a dead letter; anything else is retried after
 * `min(maxWaitMs, initialWaitMs × 2^(attempt−1))`, cut so the last retry falls at `maxAgeMs`
 * rather than a whole back-off past it.
 */
export function decideCallback(done: CallbackAttempt, policy: CallbackRetryPolicy): CallbackDecision {
  const { status, attempt, ageMs } = done;
  if (status !== undefined && status >= 200 && status < 300) return { action: 'delivered' };
  if (status !== undefined && policy.permanentStatuses.has(status)) {
    return { action: 'deadLetter', reason: `receiver answered ${status} (permanent)`, permanent: true };
  }
  if (attempt >= policy.maxAttempts) {
    return { action: 'deadLetter', reason: `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}`, permanent: false };
  }
  const limited = policy.maxAgeMs > 0;
  if (limited && ageMs >= policy.maxAgeMs) {
    return { action: 'deadLetter', reason: `gave up after ${formatAge(ageMs)} (callback_max_age ${formatAge(policy.maxAgeMs)})`, permanent: false };
  }
  const exponent = Math.min(Math.max(0, attempt - 1), 30);
  const backoffMs = Math.min(policy.maxWaitMs, policy.initialWaitMs * 2 ** exponent);
  // Whole ms: JetStream reads a fractional nak delay as none, and the retry would come at once.
  return { action: 'retry', delayMs: limited ? Math.min(backoffMs, Math.ceil(policy.maxAgeMs - ageMs)) : backoffMs };
}

/** One delivery of a stored callback from the callback stream. */
export interface StoredDelivery {
  /** JetStream's delivery count of the stored message, 1-based. */
  readonly deliveryCount: number;
  /** The receiver's answer to the worker's direct attempt; undefined when it did not answer (or after a replay). */
  readonly directStatus: number | undefined;
  /** How long the callback has been in durable delivery, ms. */
  readonly ageMs: number;
}

/** What a delivery of a stored callback is for: the direct attempt's back-off, its end, or one more attempt. */
export type DeliveryPlan =
  /** Post nothing: nak with `delayMs`, the back-off after the direct attempt; the next delivery is attempt 2. */
  | { readonly action: 'wait'; readonly delayMs: number }
  /** The direct attempt's answer ends it (a permanent status, or it was the last attempt). */
  | { readonly action: 'deadLetter'; readonly reason: string; readonly permanent: boolean }
  /** Post it: this is attempt `attempt` (the direct one was 1). */
  | { readonly action: 'attempt'; readonly attempt: number };

/**
 * The plan of one delivery of a stored callback, pure. A direct attempt that got an answer is
 * decided on that answer: its first delivery waits out the back-off after attempt 1
 * (`initialWaitMs`), posting nothing, so the receiver is asked again `initialWaitMs`, then
 * `2 × initialWaitMs`, … after each answer; the n-th delivery is then attempt n. One that got no
 * answer (or a replay) is posted at once, with the full callback_timeout: its n-th delivery is
 * attempt n + 1.
 */
export function planDelivery(delivery: StoredDelivery, policy: CallbackRetryPolicy): DeliveryPlan {
  const { deliveryCount, directStatus, ageMs } = delivery;
  if (directStatus === undefined) return { action: 'attempt', attempt: deliveryCount + 1 };
  if (deliveryCount > 1) return { action: 'attempt', attempt: deliveryCount };
  const direct = decideCallback({ status: directStatus, attempt: 1, ageMs }, policy);
  switch (direct.action) {
    case 'retry':
      return { action: 'wait', delayMs: direct.delayMs };
    case 'deadLetter':
      return direct;
    case 'delivered':
      // A 2xx is never handed off; were one stored, posting it again is the safe reading.
      return { action: 'attempt', attempt: 2 };
  }
}

/**
 * The receiver's status carried by a failed delivery's error (`CallbackFailedError.status`), read
 * structurally so the machine needs no import from src/; undefined for a transport failure.
 */
export function receiverStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('status' in error)) return undefined;
  const { status } = error;
  return typeof status === 'number' && Number.isInteger(status) && status >= 100 && status <= 599 ? status : undefined;
}

/**
 * Whether a failed hand-off of a callback to durable delivery can never succeed, however often
 * it is tried (a result too large to store even by reference): the error says so with
 * `permanent: true` (`CallbackNotStorableError`), read structurally as `receiverStatusOf` reads.
 */
export function isPermanentHandOffFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'permanent' in error && error.permanent === true;
}

/** "850ms", "1.6s", "2m5s", "24h", "25h0m1s": short, and exact enough for a log line. */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return m === 0 && s === 0 ? `${h}h` : `${h}h${m}m${s}s`;
  return s === 0 ? `${m}m` : `${m}m${s}s`;
}
