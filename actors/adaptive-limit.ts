/**
 * Adaptive concurrency: an AIMD limit on how many invocations of one function one worker runs at
 * once, raised by the function's successes and lowered when it says it is overloaded (429, or 503
 * with Retry-After: see `isThrottle` in throttle.policy.ts). Pure: no I/O, and the only clock is
 * the one injected (`now`), whose unit is whatever the caller's `startedAt` values use (unix ms
 * from `FunctionOutcome.startedAtMs` with `Date.now`, or a sequence number).
 *
 * The shape is TCP's congestion control, scaled to a function:
 * - **slow start** (optional, on by default): +1 per success, so the limit doubles every round of
 *   calls until the first throttle or `max`; a fresh lane finds its level in log2(max) rounds
 *   instead of hitting the function with `max` calls at once;
 * - **additive increase**: +1/limit per success, i.e. +1 per `limit` successes (one round);
 * - **multiplicative decrease**: × `decrease` (0.7 by default) on a throttle, at most once per
 *   round: a throttle of a call that started before the last decrease is ignored, since that call
 *   was admitted under the old limit and says nothing about the new one (without this, one burst
 *   of N throttles would divide the limit N times and collapse it to 1);
 * - **probing near the last ceiling**: once a throttle has shown where the function's capacity
 *   is, the increase within one step of that level is `probeFactor` times slower (CUBIC spends its
 *   time near W_max the same way). A function with a hard limit of C then answers one 429 per
 *   ~probeFactor·C successes instead of one per ~C: plain AIMD at a small C throttles about 1 call
 *   in 10, which wastes calls even though the throttled messages wait in JetStream unharmed. Past
 *   the ceiling by a whole step without a throttle, the ceiling is forgotten (the function scaled up).
 *
 * Why 0.7 (CUBIC's β) rather than Reno's 0.5: the decrease happens at most once per round, so it
 * cannot cascade; a throttled invocation costs one short call and a wait in JetStream, not an
 * attempt, so giving up 30 % of the concurrency instead of half keeps the function busier (about
 * 85 % of its capacity on average instead of 75 %) for the price of one or two more rounds to come
 * down from a far too high limit.
 *
 * A Retry-After on the throttle also holds the limit: no increase until that much time has passed
 * (the function said when it expects to cope again; growing before then only earns more 429s).
 */

/** How an adaptive limit behaves; every field but `max` has a default. */
export interface AdaptiveLimitOptions {
  /** Highest limit, ≥ 1: the queue's max_inflight (the worker never runs more anyway). */
  readonly max: number;
  /** Limit to start from, clamped to [1, max]. Default 1 with slow start, else `max`. */
  readonly initial?: number;
  /** Multiplicative decrease on a throttle, in (0, 1). Default 0.7. */
  readonly decrease?: number;
  /** Double per round until the first throttle. Default true. */
  readonly slowStart?: boolean;
  /** How many times slower the increase is within one step of the last throttled level, ≥ 1. Default 8. */
  readonly probeFactor?: number;
  /** The clock `startedAt` and `retryAfterMs` are measured on. Default `Date.now` (unix ms). */
  readonly now?: () => number;
}

/** What the caller knows about the call whose answer it reports. */
export interface CallSignal {
  /**
   * When the call started, on the limiter's clock (e.g. `outcome.startedAtMs`). A throttle of a
   * call that started before the last decrease is ignored; absent = always counted. With a
   * millisecond clock, a call started in the same millisecond as a decrease counts (a second
   * decrease is cheaper than reacting a round late); a sequence clock has no such tie.
   */
  readonly startedAt?: number | undefined;
  /**
   * Calls of this function in flight when it ended, this one included. When fewer than half the
   * limit are in use, a success does not raise the limit (it says nothing about more concurrency:
   * a trickle of calls would otherwise raise it to `max`). Absent = assume the limit is in use.
   */
  readonly inflight?: number | undefined;
}

/** A throttle, with the function's Retry-After when it sent one. */
export interface ThrottleSignal extends CallSignal {
  /** The function's Retry-After as a delay, on the limiter's clock unit (ms). */
  readonly retryAfterMs?: number | undefined;
}

/** The limiter's state for metrics and logs. */
export interface AdaptiveLimitSnapshot {
  /** Calls allowed at once now: floor(window), in [1, max]. */
  readonly limit: number;
  /** The float window the limit is the floor of. */
  readonly window: number;
  readonly max: number;
  /** Still doubling (no throttle yet). */
  readonly slowStart: boolean;
  /** The limit at the last decrease, while the limiter probes near it; undefined once passed. */
  readonly ceiling: number | undefined;
  /** Successes, throttles that lowered the limit, and throttles ignored (same round). */
  readonly successes: number;
  readonly decreases: number;
  readonly ignoredThrottles: number;
  /** No increase before this time (a Retry-After); undefined when not holding. */
  readonly holdUntil: number | undefined;
}

/** The port a lane uses: read `limit` before starting a call, report each answer. */
export interface ConcurrencyLimiter {
  /** Calls of this function this worker may run at once now, integer ≥ 1. */
  readonly limit: number;
  /** The function answered with success (2xx/3xx). */
  onSuccess(signal?: CallSignal): void;
  /** The function said it is overloaded (429, or 503 with Retry-After). */
  onThrottle(signal?: ThrottleSignal): void;
  snapshot(): AdaptiveLimitSnapshot;
}

const EPSILON = 1e-9;

/** The limit a lane has when adaptive concurrency is off: always `max`. */
export function fixedLimit(max: number): ConcurrencyLimiter {
  const limit = Math.max(1, Math.floor(max));
  const snapshot: AdaptiveLimitSnapshot = Object.freeze({
    limit,
    window: limit,
    max: limit,
    slowStart: false,
    ceiling: undefined,
    successes: 0,
    decreases: 0,
    ignoredThrottles: 0,
    holdUntil: undefined,
  });
  return { limit, onSuccess: () => undefined, onThrottle: () => undefined, snapshot: () => snapshot };
}

/** An AIMD limiter for one function on one worker. Throws a RangeError on options out of range. */
export class AdaptiveLimit implements ConcurrencyLimiter {
  readonly #max: number;
  readonly #decrease: number;
  readonly #probeFactor: number;
  readonly #now: () => number;
  #window: number;
  #slowStart: boolean;
  #ceiling: number | undefined;
  /** Clock time of the last decrease: throttles of calls started before it are ignored. */
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  #holdUntil: number | undefined;
  #successes = 0;
  #decreases = 0;
  #ignored = 0;

  constructor(opts: AdaptiveLimitOptions) {
    const { max, decrease = 0.7, slowStart = true, probeFactor = 8, now = Date.now } = opts;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`adaptive limit: max must be an integer ≥ 1, got ${max}`);
    if (!(decrease > 0 && decrease < 1)) throw new RangeError(`adaptive limit: decrease must be in (0, 1), got ${decrease}`);
    if (!(probeFactor >= 1)) throw new RangeError(`adaptive limit: probeFactor must be ≥ 1, got ${probeFactor}`);
    this.#max = max;
    this.#decrease = decrease;
    this.#probeFactor = probeFactor;
    this.#now = now;
    this.#slowStart = slowStart;
    const initial = opts.initial ?? (slowStart ? 1 : max);
    this.#window = Math.min(max, Math.max(1, Number.isFinite(initial) ? initial : 1));
  }

  get limit(): number {
    // +1/limit added `limit` times falls a hair short of the next integer in floating point.
    return Math.floor(this.#window + EPSILON);
  }

  onSuccess(signal?: CallSignal): void {
    this.#successes += 1;
    const limit = this.limit;
    if (this.#window + EPSILON >= this.#max) return;
    if (signal?.inflight !== undefined && signal.inflight * 2 < limit) return;
    if (this.#holdUntil !== undefined) {
      if (this.#now() < this.#holdUntil) return;
      this.#holdUntil = undefined;
    }
    if (this.#slowStart) {
      this.#window = Math.min(this.#max, this.#window + 1);
      return;
    }
    const near = this.#ceiling !== undefined && this.#window + EPSILON >= this.#ceiling - 1;
    this.#window = Math.min(this.#max, this.#window + 1 / (limit * (near ? this.#probeFactor : 1)));
    // A whole step past the last throttled level without a throttle: the function copes with more now.
    if (this.#ceiling !== undefined && this.#window + EPSILON >= this.#ceiling + 1) this.#ceiling = undefined;
  }

  onThrottle(signal?: ThrottleSignal): void {
    const startedAt = signal?.startedAt;
    if (startedAt !== undefined && startedAt < this.#lastDecreaseAt) {
      this.#ignored += 1;
      return;
    }
    const now = this.#now();
    this.#slowStart = false;
    this.#ceiling = this.limit;
    this.#window = Math.max(1, this.#window * this.#decrease);
    this.#lastDecreaseAt = now;
    this.#decreases += 1;
    const retryAfterMs = signal?.retryAfterMs;
    if (retryAfterMs !== undefined && retryAfterMs > 0) this.#holdUntil = Math.max(this.#holdUntil ?? now, now + retryAfterMs);
  }

  snapshot(): AdaptiveLimitSnapshot {
    return {
      limit: this.limit,
      window: this.#window,
      max: this.#max,
      slowStart: this.#slowStart,
      ceiling: this.#ceiling,
      successes: this.#successes,
      decreases: this.#decreases,
      ignoredThrottles: this.#ignored,
      holdUntil: this.#holdUntil,
    };
  }
}
