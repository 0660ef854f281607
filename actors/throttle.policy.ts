import { isSuccess } from './dead-letter.policy.js';
import type { FunctionOutcome } from './invocation.types.js';
import { parseRetryAfterMs, type RetryPolicy } from './retry.policy.js';

/**
 * What adaptive concurrency calls a throttle, and how long a throttled message waits in JetStream.
 * Pure functions: the clock and the randomness are parameters.
 */

/** Throttled deliveries of one invocation before throttles count as attempts again (`throttle_max_deliveries`). */
export const DEFAULT_THROTTLE_MAX_DELIVERIES = 50;

/** The wait of a throttle without Retry-After, ms, before jitter (bounded by the retry policy). */
export const THROTTLE_WAIT_MS = 1_000;

/**
 * The function says it is overloaded: a 429, or a 503 *with* Retry-After. asyncfn's own 503 for a
 * function it could not reach carries no Retry-After (and a transport error), so it stays an
 * ordinary failure; so does a 503 from an OpenFaaS component (`X-OpenFaaS-Internal`).
 */
export function isThrottle(outcome: FunctionOutcome): boolean {
  if (outcome.transportError !== undefined || outcome.internal === true) return false;
  if (outcome.status === 429) return true;
  return outcome.status === 503 && outcome.retryAfter !== undefined && outcome.retryAfter.trim() !== '';
}

/**
 * How long a throttled message waits before its next delivery, ms: the function's Retry-After when
 * it sent a valid one, else about a second (uniform in [0.5, 1.5] × the base, so a burst of
 * throttles does not come back at once); never more than `maxWaitMs`. The base is also never more
 * than `initialWaitMs`: a throttle waits no longer than a failure would.
 */
export function throttleDelayMs(outcome: FunctionOutcome, policy: RetryPolicy, nowMs: number, random: () => number): number {
  const retryAfterMs = parseRetryAfterMs(outcome.retryAfter, nowMs);
  if (retryAfterMs !== undefined) return Math.min(policy.maxWaitMs, retryAfterMs);
  const base = Math.min(THROTTLE_WAIT_MS, policy.initialWaitMs);
  const r = random();
  const drawn = Math.round(base * (0.5 + (Number.isFinite(r) ? Math.min(1, Math.max(0, r)) : 0.5)));
  return Math.max(0, Math.min(policy.maxWaitMs, drawn));
}

/** What a settlement tells an adaptive limiter (see adaptive-limit.ts). */
export type AdaptiveSignal = 'success' | 'throttle' | 'none';

/**
 * The limiter's reading of a settlement report: `throttle` when the function said it is overloaded
 * (whether the delivery was settled as `throttled` or, past throttle_max_deliveries, as an ordinary
 * retry or failure: the function is overloaded all the same), `success` when it answered 2xx/3xx,
 * `none` otherwise (a failure says nothing about concurrency; a cancelled, expired or released
 * invocation did not get an answer of its own).
 */
export function adaptiveSignal(report: {
  readonly settlement: string;
  readonly outcome?: FunctionOutcome | undefined;
  readonly deadLetter?: string | undefined;
}): AdaptiveSignal {
  const { settlement, outcome } = report;
  if (outcome === undefined || settlement === 'cancelled' || settlement === 'released' || settlement === 'crashed' || report.deadLetter === 'expired') return 'none';
  if (settlement === 'throttled' || isThrottle(outcome)) return 'throttle';
  return isSuccess(outcome) ? 'success' : 'none';
}
