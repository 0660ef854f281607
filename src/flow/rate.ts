import { parseDurationMs } from '../config/duration.js';

/**
 * Rate limits as data and arithmetic, no I/O: the spec syntax of the `com.asyncfn.rate_limit`
 * annotations ("120/1m") and GCRA, the generic cell rate algorithm (ATM's policer; what
 * redis-cell and throttled implement). GCRA keeps ONE number per limiter, the theoretical arrival
 * time (TAT): the instant at which the limiter would be idle again had every token granted so far
 * been spent exactly at the rate. One number is what makes the limiter cheap to share through a
 * KV bucket with compare-and-set (see shared-rate-limiter.ts): no token counter and no refill
 * timestamp to keep consistent.
 */

/** `count` tokens per `periodMs`. */
export interface Rate {
  /** Tokens per period: an integer ≥ 1. */
  readonly count: number;
  /** The period, ms (≥ 1 ms, ≤ {@link MAX_RATE_PERIOD_MS}). */
  readonly periodMs: number;
}

/**
 * The longest period a rate may have: 24 h. A limiter's state matters for at most one period
 * after its last write (see {@link takeTokens}), so the rate-limit bucket's TTL is this long and
 * an idle key disappears a day after its last use without ever forgetting a limit early.
 */
export const MAX_RATE_PERIOD_MS = 24 * 3_600_000;

/** The largest count a rate may have (far above anything a limiter over NATS can serve). */
const MAX_RATE_COUNT = 1_000_000_000;

/** A unit alone ("/s", "/h") means one of it. */
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** The result of {@link parseRate}: a rate, or a one-line reason it is not one. */
export type ParsedRate = { readonly ok: true; readonly rate: Rate } | { readonly ok: false; readonly problem: string };

const EXPECTED = 'expected <count>/<period> such as "120/1m", "20/s", "5/10s" or "1000/h"';

/**
 * Parses a rate spec: `<count>/<period>`, where count is a positive integer and the period is a
 * unit alone (`ms`, `s`, `m`, `h`: one of it) or a duration in the config's syntax ("10s",
 * "1m30s", "500ms", bare seconds). Spaces around the parts are ignored. Never throws.
 */
export function parseRate(text: string): ParsedRate {
  const slash = text.indexOf('/');
  if (slash === -1) return { ok: false, problem: `"${text}" has no "/": ${EXPECTED}` };
  const countText = text.slice(0, slash).trim();
  const periodText = text.slice(slash + 1).trim();
  if (!/^\d+$/.test(countText)) return { ok: false, problem: `"${text}": the count "${countText}" is not a positive integer; ${EXPECTED}` };
  const count = Number(countText);
  if (count < 1 || count > MAX_RATE_COUNT) return { ok: false, problem: `"${text}": the count must be between 1 and ${MAX_RATE_COUNT}` };
  const periodMs = UNIT_MS[periodText] ?? parseDurationMs(periodText);
  if (periodMs === undefined) return { ok: false, problem: `"${text}": the period "${periodText}" is not a unit (ms, s, m, h) or a duration; ${EXPECTED}` };
  if (periodMs < 1) return { ok: false, problem: `"${text}": the period must be at least 1ms` };
  if (periodMs > MAX_RATE_PERIOD_MS) return { ok: false, problem: `"${text}": the period must be at most 24h` };
  return { ok: true, rate: { count, periodMs } };
}

/** A rate as a spec parseRate reads back: `{ count: 20, periodMs: 1000 }` → "20/1s". */
export function formatRate(rate: Rate): string {
  const { count, periodMs } = rate;
  if (periodMs % 3_600_000 === 0) return `${count}/${periodMs / 3_600_000}h`;
  if (periodMs % 60_000 === 0) return `${count}/${periodMs / 60_000}m`;
  if (periodMs % 1_000 === 0) return `${count}/${periodMs / 1_000}s`;
  return `${count}/${periodMs}ms`;
}

/** Milliseconds between two tokens at the sustained rate (GCRA's emission interval T). */
export function intervalMs(rate: Rate): number {
  return rate.periodMs / rate.count;
}

/**
 * The default burst: a tenth of the count, at least 1 (20/s → 2, 120/1m → 12, 5/10s → 1).
 *
 * Why a tenth: whatever the takers do, the tokens granted in any window of length W are at most
 * `W × count / period + burst` (see {@link takeTokens}), so over one whole period a limiter never
 * grants more than 110 % of its count, and over longer windows the excess shrinks (20/s over
 * 30 s: at most 602 instead of 600). A burst above 1 also lets a worker pull a small batch at once,
 * and absorbs the few ms a taker arrives late after its retryInMs without losing tokens.
 */
export function defaultBurst(rate: Rate): number {
  return Math.max(1, Math.floor(rate.count / 10));
}

/** The outcome of {@link takeTokens}. */
export interface Take {
  /** Tokens granted now, 0..n. */
  readonly granted: number;
  /** The TAT to store, ms (the same as the one given when nothing was granted). */
  readonly tatMs: number;
  /** When fewer than n were granted: ms until one more token fits (≥ 1); otherwise 0. */
  readonly retryInMs: number;
}

/** Absorbs floating-point error in the division below (T need not be an integer, 1000/3 ms). */
const EPSILON = 1e-9;

/**
 * GCRA: takes as many of `n` tokens as fit at `nowMs`, given the stored TAT `tatMs` (0 for a
 * limiter never used). With T = period / count, a token fits while the TAT it would leave is at
 * most `burst × T` ahead of now; each granted token advances the TAT by T. Hence an idle limiter
 * grants `burst` at once and then one per T, and the TAT is never more than `burst × T ≤ period`
 * ahead of the instant it was written (the bucket's TTL relies on this).
 *
 * `burst` is clamped to 1..count (default {@link defaultBurst}); `n` is a non-negative integer.
 * Pure: the caller supplies the clock.
 */
export function takeTokens(tatMs: number, nowMs: number, n: number, rate: Rate, burst: number = defaultBurst(rate)): Take {
  const t = intervalMs(rate);
  const tolerance = clampBurst(burst, rate) * t;
  const start = Math.max(tatMs, nowMs);
  const fitting = Math.max(0, Math.floor((nowMs + tolerance - start) / t + EPSILON));
  const wanted = Number.isFinite(n) ? Math.max(0, Math.floor(n)) : 0;
  const granted = Math.min(wanted, fitting);
  const newTat = granted > 0 ? start + granted * t : tatMs;
  if (granted === wanted) return { granted, tatMs: newTat, retryInMs: 0 };
  // The next token fits once now ≥ TAT + T − tolerance.
  const retryInMs = Math.max(1, Math.ceil(Math.max(newTat, nowMs) + t - tolerance - nowMs - EPSILON));
  return { granted, tatMs: newTat, retryInMs };
}

function clampBurst(burst: number, rate: Rate): number {
  if (!Number.isFinite(burst)) return defaultBurst(rate);
  return Math.min(rate.count, Math.max(1, Math.floor(burst)));
}
