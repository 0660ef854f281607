import t from 'tap';
import { AdaptiveLimit, fixedLimit, type ConcurrencyLimiter } from '../../../actors/adaptive-limit.js';

/** A clock the test moves by hand. */
function manualClock(start = 0) {
  let now = start;
  return { now: () => now, set: (ms: number) => void (now = ms) };
}

t.test('starts at 1 with slow start, at max without; clamps an initial value into [1, max]', async (t) => {
  t.equal(new AdaptiveLimit({ max: 10 }).limit, 1);
  t.equal(new AdaptiveLimit({ max: 10, slowStart: false }).limit, 10);
  t.equal(new AdaptiveLimit({ max: 10, initial: 4 }).limit, 4);
  t.equal(new AdaptiveLimit({ max: 10, initial: 40 }).limit, 10);
  t.equal(new AdaptiveLimit({ max: 10, initial: 0 }).limit, 1);
  t.equal(new AdaptiveLimit({ max: 10, initial: Number.NaN }).limit, 1);
});

t.test('options out of range are refused', async (t) => {
  t.throws(() => new AdaptiveLimit({ max: 0 }), RangeError);
  t.throws(() => new AdaptiveLimit({ max: 2.5 }), RangeError);
  t.throws(() => new AdaptiveLimit({ max: 4, decrease: 1 }), RangeError);
  t.throws(() => new AdaptiveLimit({ max: 4, decrease: 0 }), RangeError);
  t.throws(() => new AdaptiveLimit({ max: 4, probeFactor: 0.5 }), RangeError);
});

t.test('slow start: +1 per success (doubling per round) up to max, until the first throttle', async (t) => {
  const limit = new AdaptiveLimit({ max: 20 });
  const seen = [limit.limit];
  for (let round = 0; round < 4; round++) {
    const calls = limit.limit;
    for (let i = 0; i < calls; i++) limit.onSuccess();
    seen.push(limit.limit);
  }
  t.same(seen, [1, 2, 4, 8, 16]);
  for (let i = 0; i < 16; i++) limit.onSuccess();
  t.equal(limit.limit, 20, 'never above max');
  limit.onThrottle();
  t.equal(limit.snapshot().slowStart, false, 'the first throttle ends slow start');
  t.equal(limit.limit, 14, '20 × 0.7');
});

t.test('additive increase: +1 per `limit` successes', async (t) => {
  const limit = new AdaptiveLimit({ max: 100, initial: 4, slowStart: false });
  for (let i = 0; i < 3; i++) limit.onSuccess();
  t.equal(limit.limit, 4, 'three successes at 4: not yet');
  limit.onSuccess();
  t.equal(limit.limit, 5, 'the fourth: 5');
  for (let i = 0; i < 5; i++) limit.onSuccess();
  t.equal(limit.limit, 6, 'five more at 5: 6');
});

t.test('multiplicative decrease: × 0.7 (or as configured), never below 1', async (t) => {
  const limit = new AdaptiveLimit({ max: 100, initial: 10, slowStart: false });
  limit.onThrottle();
  t.equal(limit.limit, 7);
  limit.onThrottle();
  t.equal(limit.limit, 4, '4.9');
  for (let i = 0; i < 10; i++) limit.onThrottle();
  t.equal(limit.limit, 1);
  t.equal(limit.snapshot().window, 1);
  const half = new AdaptiveLimit({ max: 100, initial: 10, slowStart: false, decrease: 0.5 });
  half.onThrottle();
  t.equal(half.limit, 5);
});

t.test('one decrease per round: throttles of calls that started before the last decrease are ignored', async (t) => {
  const clock = manualClock(100);
  const limit = new AdaptiveLimit({ max: 100, initial: 20, slowStart: false, now: clock.now });
  // 20 calls started at t=100; the function throttles 16 of them, answering at t=110.
  clock.set(110);
  for (let i = 0; i < 16; i++) limit.onThrottle({ startedAt: 100 });
  t.equal(limit.limit, 14, 'one decrease for the whole burst');
  t.match(limit.snapshot(), { decreases: 1, ignoredThrottles: 15 });
  // A call started after that decrease is throttled too: the new limit is still too high.
  clock.set(130);
  limit.onThrottle({ startedAt: 111 });
  t.equal(limit.limit, 9, '14 × 0.7');
  t.equal(limit.snapshot().decreases, 2);
  // No start time: always counted.
  limit.onThrottle();
  t.equal(limit.limit, 6);
});

t.test('a success raises nothing while less than half the limit is in use', async (t) => {
  const limit = new AdaptiveLimit({ max: 100, initial: 10, slowStart: false });
  for (let i = 0; i < 50; i++) limit.onSuccess({ inflight: 4 });
  t.equal(limit.limit, 10, 'a trickle of calls says nothing about more concurrency');
  for (let i = 0; i < 10; i++) limit.onSuccess({ inflight: 5 });
  t.equal(limit.limit, 11);
  t.equal(limit.snapshot().successes, 60, 'every success is counted');
});

t.test('a Retry-After holds the limit: no increase until it has passed', async (t) => {
  const clock = manualClock(1_000);
  const limit = new AdaptiveLimit({ max: 100, initial: 10, slowStart: false, probeFactor: 1, now: clock.now });
  limit.onThrottle({ retryAfterMs: 5_000 });
  t.equal(limit.limit, 7);
  t.equal(limit.snapshot().holdUntil, 6_000);
  clock.set(5_999);
  for (let i = 0; i < 20; i++) limit.onSuccess();
  t.equal(limit.limit, 7, 'held');
  clock.set(6_000);
  for (let i = 0; i < 7; i++) limit.onSuccess();
  t.equal(limit.limit, 8, 'growing again');
  t.equal(limit.snapshot().holdUntil, undefined);
});

t.test('near the level of the last throttle the increase is probeFactor times slower; past it, the ceiling is forgotten', async (t) => {
  const limit = new AdaptiveLimit({ max: 100, initial: 10, slowStart: false, probeFactor: 4 });
  limit.onThrottle();
  t.match(limit.snapshot(), { limit: 7, ceiling: 10 });
  // 7 → 9: normal speed (two rounds, 7 + 8 successes).
  let successes = 0;
  while (limit.limit < 9 && successes < 1_000) {
    limit.onSuccess();
    successes += 1;
  }
  t.equal(successes, 15, '7 → 9 at +1/limit');
  // 9 → 10: within one step of the ceiling, four times slower.
  successes = 0;
  while (limit.limit < 10 && successes < 1_000) {
    limit.onSuccess();
    successes += 1;
  }
  t.equal(successes, 36, '9 → 10 takes 4 × 9 successes');
  successes = 0;
  while (limit.limit < 11 && successes < 1_000) {
    limit.onSuccess();
    successes += 1;
  }
  t.equal(successes, 40, '10 → 11 takes 4 × 10');
  t.equal(limit.snapshot().ceiling, undefined, 'a whole step past the ceiling: forgotten');
  successes = 0;
  while (limit.limit < 12 && successes < 1_000) {
    limit.onSuccess();
    successes += 1;
  }
  t.equal(successes, 11, 'normal speed again');
});

t.test('fixedLimit: always max, ignores every signal', async (t) => {
  const fixed = fixedLimit(8);
  fixed.onThrottle();
  fixed.onSuccess();
  t.equal(fixed.limit, 8);
  t.match(fixed.snapshot(), { limit: 8, max: 8, decreases: 0 });
  t.equal(fixedLimit(0).limit, 1);
});

// ---- simulation ----------------------------------------------------------------------------

/** Deterministic [0, 1) numbers (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A min-heap of timed events: the simulation's event loop. */
class Timeline<T> {
  readonly #heap: Array<{ at: number; seq: number; item: T }> = [];
  #seq = 0;
  get size(): number {
    return this.#heap.length;
  }
  push(at: number, item: T): void {
    const h = this.#heap;
    h.push({ at, seq: this.#seq++, item });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): { at: number; item: T } | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
  #less(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
}

interface SimOptions {
  /** Invocations in the backlog at t=0. */
  readonly messages: number;
  /** The function answers 429 to a call arriving while this many run. */
  readonly capacity: number;
  /** A successful call's duration, ms (± 20 % jitter). */
  readonly latencyMs: number;
  /** A 429's duration, ms. */
  readonly throttleLatencyMs: number;
  /** How long a throttled message waits in JetStream, ms (± 50 % jitter, as throttleDelayMs). */
  readonly nakDelayMs: number;
  /** Hard stop, simulated ms. */
  readonly untilMs: number;
  readonly seed: number;
}

interface SimResult {
  readonly calls: number;
  readonly throttles: number;
  readonly completed: number;
  readonly endMs: number;
  /** The most throttles one invocation got. */
  readonly maxThrottlesPerInvocation: number;
  /** Simulated ms from t=0 until the limit was first ≤ capacity (undefined: never). */
  readonly convergedAtMs: number | undefined;
  /** Time-weighted share of the run (after convergence) with the limit ≤ capacity. */
  readonly shareAtOrBelowCapacity: number;
  /** Highest limit after convergence. */
  readonly maxLimitAfterConvergence: number;
}

/**
 * One lane draining a backlog against a function with a hard concurrency limit: it starts calls
 * while fewer than `limiter.limit` run, reports each answer to the limiter, and puts a throttled
 * message back after the nak delay (it waits in JetStream, it is not lost and not failed).
 */
function simulate(limiter: ConcurrencyLimiter & { setNow?: (ms: number) => void }, o: SimOptions, clock: { set: (ms: number) => void }): SimResult {
  const random = prng(o.seed);
  type Ev = { kind: 'answer'; id: number; startedAt: number; ok: boolean } | { kind: 'ready'; id: number };
  const timeline = new Timeline<Ev>();
  const ready: number[] = [];
  for (let id = 0; id < o.messages; id++) ready.push(id);
  const throttlesOf = new Map<number, number>();
  let readHead = 0;
  let now = 0;
  let inflight = 0;
  let running = 0; // at the function, successful calls only
  let calls = 0;
  let throttles = 0;
  let completed = 0;
  let convergedAtMs: number | undefined;
  let belowMs = 0;
  let lastChange = 0;
  let lastLimit = limiter.limit;
  let maxAfter = 0;
  const account = (at: number) => {
    if (convergedAtMs !== undefined && lastLimit <= o.capacity) belowMs += at - Math.max(lastChange, convergedAtMs);
    lastChange = Math.max(lastChange, at);
  };
  const noteLimit = () => {
    const limit = limiter.limit;
    if (limit !== lastLimit) {
      account(now);
      lastLimit = limit;
    }
    if (convergedAtMs === undefined && limit <= o.capacity) {
      convergedAtMs = now;
      lastChange = now;
    }
    if (convergedAtMs !== undefined) maxAfter = Math.max(maxAfter, limit);
  };
  const fill = () => {
    while (inflight < limiter.limit && readHead < ready.length) {
      const id = ready[readHead++]!;
      inflight += 1;
      calls += 1;
      const ok = running < o.capacity;
      if (ok) running += 1;
      const duration = ok ? o.latencyMs * (0.8 + 0.4 * random()) : o.throttleLatencyMs;
      timeline.push(now + duration, { kind: 'answer', id, startedAt: now, ok });
    }
    // Keep the ready list from growing without bound.
    if (readHead > 4096 && readHead * 2 > ready.length) {
      ready.splice(0, readHead);
      readHead = 0;
    }
  };
  noteLimit();
  fill();
  let steps = 0;
  while (timeline.size > 0 && steps < 5_000_000) {
    steps += 1;
    const next = timeline.pop()!;
    if (next.at > o.untilMs) break;
    now = next.at;
    clock.set(now);
    const ev = next.item;
    if (ev.kind === 'ready') {
      ready.push(ev.id);
    } else {
      if (ev.ok) {
        running -= 1;
        completed += 1;
        limiter.onSuccess({ startedAt: ev.startedAt, inflight });
      } else {
        throttles += 1;
        throttlesOf.set(ev.id, (throttlesOf.get(ev.id) ?? 0) + 1);
        limiter.onThrottle({ startedAt: ev.startedAt });
        timeline.push(now + o.nakDelayMs * (0.5 + random()), { kind: 'ready', id: ev.id });
      }
      inflight -= 1;
      noteLimit();
    }
    fill();
  }
  account(now);
  const span = convergedAtMs === undefined ? 0 : now - convergedAtMs;
  return {
    calls,
    throttles,
    completed,
    endMs: now,
    maxThrottlesPerInvocation: Math.max(0, ...throttlesOf.values()),
    convergedAtMs,
    shareAtOrBelowCapacity: span > 0 ? belowMs / span : 0,
    maxLimitAfterConvergence: maxAfter,
  };
}

const FUNCTION = { capacity: 4, latencyMs: 50, throttleLatencyMs: 2, nakDelayMs: 1_000 } as const;

t.test('simulation: a function that throttles above 4 calls; from a limit of 64, AIMD comes down to ≤ 4 within a few rounds', async (t) => {
  const clock = manualClock();
  const limiter = new AdaptiveLimit({ max: 64, slowStart: false, now: clock.now });
  const r = simulate(limiter, { ...FUNCTION, messages: 5_000, untilMs: 600_000, seed: 1 }, clock);
  t.comment(`converged at ${r.convergedAtMs} ms after ${limiter.snapshot().decreases} decreases; ${r.throttles} of ${r.calls} calls throttled`);
  t.ok(r.convergedAtMs !== undefined, 'the limit came down to the capacity');
  // 64 × 0.7^8 ≈ 3.7: eight decreases, one per round of 429s; a round is one call, 2-50 ms.
  t.ok(r.convergedAtMs! <= 10 * FUNCTION.latencyMs, `within 10 call latencies (${r.convergedAtMs} ms)`);
  t.ok(r.maxLimitAfterConvergence <= FUNCTION.capacity + 1, `afterwards it only probes one above (max ${r.maxLimitAfterConvergence})`);
  t.ok(r.shareAtOrBelowCapacity >= 0.8, `and stays at or below the capacity most of the time (${(r.shareAtOrBelowCapacity * 100).toFixed(1)} %)`);
  t.equal(r.completed, 5_000, 'every invocation completed');
});

t.test('simulation: over a long run (20,000 invocations, slow start), fewer than 5 % of calls are throttled; adaptive off throttles most', async (t) => {
  const clock = manualClock();
  const limiter = new AdaptiveLimit({ max: 64, now: clock.now });
  const on = simulate(limiter, { ...FUNCTION, messages: 20_000, untilMs: 3_600_000, seed: 2 }, clock);
  const onShare = on.throttles / on.calls;
  t.comment(
    `adaptive on: ${on.throttles} of ${on.calls} calls throttled (${(onShare * 100).toFixed(2)} %), drained in ${(on.endMs / 1000).toFixed(1)} s, ` +
      `at most ${on.maxThrottlesPerInvocation} throttles per invocation; limit now ${limiter.limit}`,
  );
  t.equal(on.completed, 20_000, 'every invocation completed');
  t.ok(onShare < 0.05, `throttled share ${(onShare * 100).toFixed(2)} % < 5 %`);
  // The ideal: 4 at a time, 50 ms each = 80/s, 250 s for 20,000.
  t.ok(on.endMs < 2 * (20_000 / FUNCTION.capacity) * FUNCTION.latencyMs, `drained within twice the ideal time (${(on.endMs / 1000).toFixed(1)} s)`);

  const fixedClock = manualClock();
  const off = simulate(fixedLimit(16), { ...FUNCTION, messages: 2_000, untilMs: 3_600_000, seed: 3 }, fixedClock);
  const offShare = off.throttles / off.calls;
  t.comment(
    `adaptive off (16 at once): ${off.throttles} of ${off.calls} calls throttled (${(offShare * 100).toFixed(2)} %), ` +
      `at most ${off.maxThrottlesPerInvocation} throttles per invocation (max_retry_attempts=10 would dead-letter those past 9)`,
  );
  t.equal(off.completed, 2_000);
  t.ok(offShare > 0.5, `adaptive off: most calls throttled (${(offShare * 100).toFixed(2)} %)`);
  t.ok(off.maxThrottlesPerInvocation > on.maxThrottlesPerInvocation, 'and single invocations are throttled far more often');
});
