import type { FunctionOutcome } from './invocation.types.js';

/**
 * When to retry and how long to wait, with OpenFaaS Pro's semantics. Pure data and pure functions,
 * like BullMQ's `Backoffs`: the clock (`nowMs`) and the randomness (`random`) are parameters, so
 * the machine decides and the tests check without either. A function's own overrides (its
 * `com.openfaas.retry.*` annotations) are read where it is resolved: src/functions/annotations.ts.
 */

/** `exponential`: the ceiling itself; `full`: uniform up to the ceiling; `equal`: uniform in its upper half. */
export type BackoffMode = 'exponential' | 'full' | 'equal';

export interface RetryPolicy {
  /** Total attempts including the first (OpenFaaS `max_retry_attempts`, default 10); 1 = no retries. */
  readonly maxAttempts: number;
  /** Function statuses worth another attempt (`http_retry_codes`, default 408,429,500,502,503,504). */
  readonly retryStatuses: ReadonlySet<number>;
  /** Minimum and first delay, ms (`initial_retry_wait`, default 10s). */
  readonly initialWaitMs: number;
  /** Upper bound of any delay, ms (`max_retry_wait`, default 120s). */
  readonly maxWaitMs: number;
  /** How the delay grows between attempts (default `exponential`). */
  readonly mode: BackoffMode;
}

/**
 * `attempt` is the attempt that just failed (1-based). Connection errors, timeouts and responses
 * marked `X-OpenFaaS-Internal` (the gateway's or watchdog's own failure) are retried whatever
 * their status; otherwise only the listed statuses are.
 */
export function shouldRetry(outcome: FunctionOutcome, attempt: number, policy: RetryPolicy): boolean {
  if (attempt >= policy.maxAttempts) return false;
  return outcome.transportError !== undefined || outcome.internal === true || policy.retryStatuses.has(outcome.status);
}

/** The range `backoffDelayMs` draws from after `attempt` failed; integers, minMs ≤ maxMs. */
export function backoffBounds(attempt: number, policy: RetryPolicy): { minMs: number; maxMs: number } {
  const floor = Math.min(policy.initialWaitMs, policy.maxWaitMs);
  // An exponent past 1023 overflows 2**n; min() with a finite maxWaitMs absorbs the Infinity.
  const exponent = Math.min(Math.max(0, Math.floor(attempt - 1) || 0), 1023);
  const ceiling = toSafeMs(Math.min(policy.maxWaitMs, policy.initialWaitMs * 2 ** exponent));
  const lower = policy.mode === 'exponential' ? ceiling : policy.mode === 'full' ? floor : Math.max(floor, Math.ceil(ceiling / 2));
  return { minMs: Math.min(toSafeMs(lower), ceiling), maxMs: ceiling };
}

/** Delay before the next attempt, ms, after `attempt` failed. `random` returns [0, 1). */
export function backoffDelayMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  const { minMs, maxMs } = backoffBounds(attempt, policy);
  if (minMs === maxMs) return minMs;
  // +1 so every integer in [minMs, maxMs] is equally likely, the upper end included.
  const drawn = minMs + Math.floor(random() * (maxMs - minMs + 1));
  return Number.isFinite(drawn) ? Math.min(maxMs, Math.max(minMs, drawn)) : minMs;
}

/**
 * Delay before the next attempt, honouring the function's Retry-After (OpenFaaS Pro does) but
 * never below `initialWaitMs` nor above `maxWaitMs`.
 */
export function retryDelayMs(outcome: FunctionOutcome, attempt: number, policy: RetryPolicy, nowMs: number, random: () => number): number {
  const retryAfterMs = parseRetryAfterMs(outcome.retryAfter, nowMs);
  if (retryAfterMs === undefined) return backoffDelayMs(attempt, policy, random);
  return Math.min(policy.maxWaitMs, Math.max(policy.initialWaitMs, retryAfterMs));
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must accept.
const IMF_FIXDATE = /^[A-Z][a-z]{2}, (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^[A-Z][a-z]+, (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

function parseHttpDateMs(text: string, nowMs: number): number | undefined {
  let m: RegExpExecArray | null;
  let parts: [day: string, month: string, year: number, h: string, min: string, s: string] | undefined;
  if ((m = IMF_FIXDATE.exec(text))) parts = [m[1]!, m[2]!, Number(m[3]), m[4]!, m[5]!, m[6]!];
  else if ((m = ASCTIME_DATE.exec(text))) parts = [m[2]!, m[1]!, Number(m[6]), m[3]!, m[4]!, m[5]!];
  else if ((m = RFC850_DATE.exec(text))) {
    // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
    const thisYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    if (year > thisYear + 50) year -= 100;
    parts = [m[1]!, m[2]!, year, m[4]!, m[5]!, m[6]!];
  }
  if (parts === undefined) return undefined;
  const [day, monthName, year, h, min, s] = parts;
  const month = MONTHS.indexOf(monthName);
  const ms = Date.UTC(year, month, Number(day), Number(h), Number(min), Number(s));
  const check = new Date(ms); // rejects "Feb 30", "25:00:00" and the like, which Date.UTC rolls over
  const valid =
    month >= 0 && check.getUTCDate() === Number(day) && check.getUTCHours() === Number(h) && check.getUTCMinutes() === Number(min) && check.getUTCSeconds() === Number(s);
  return valid ? ms : undefined;
}

/** Retry-After (RFC 9110 §10.2.3) as a delay from `nowMs`: undefined when absent or invalid, 0 for a past date. */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return toSafeMs(Number(text) * 1000);
  const dateMs = parseHttpDateMs(text, nowMs);
  return dateMs === undefined ? undefined : Math.max(0, Math.ceil(dateMs - nowMs));
}

/** "429, 502,503" → {429, 502, 503}; undefined when any entry is not a status 100–599 (or the text is empty). */
export function parseRetryStatuses(text: string): Set<number> | undefined {
  const statuses = new Set<number>();
  for (const entry of text.split(',')) {
    const trimmed = entry.trim();
    if (!/^\d{3}$/.test(trimmed)) return undefined;
    const status = Number(trimmed);
    if (status < 100 || status > 599) return undefined;
    statuses.add(status);
  }
  return statuses;
}

function toSafeMs(ms: number): number {
  return Math.min(Math.round(ms), Number.MAX_SAFE_INTEGER);
}
