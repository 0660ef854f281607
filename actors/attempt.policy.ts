/*
 * Which attempt a redelivery is. JetStream's delivery count cannot say it: it also counts
 * deliveries that started no attempt (a throttle, a delivery given back unworked, a second
 * delivery of an invocation still running) and, on nats-server before 2.10.16, a retry's
 * redelivery that met only ended pull requests, which the server counts and never sends (it comes
 * again after ack_wait). So the worker keeps the count itself, per call id, in the attempt ledger
 * (src/status/attempt-ledger.ts): a redelivery reads it, takes the next attempt and records it
 * before the function runs. A first delivery is attempt 1 and touches no ledger.
 */

/**
 * Attempts past max_attempts that a redelivery may still make. JetStream redelivers an attempt cut
 * off by its worker's death (killed, evicted, out of memory); the first such attempt past the last
 * runs once more, as BullMQ recovers a stalled job once (maxStalledCount 1). After that the
 * invocation is dead-lettered without a call: a function that takes down whichever worker calls
 * it is called max_attempts + 1 times, not forever.
 */
const STALLED_ATTEMPTS_ALLOWED = 1;

/** Whether a redelivery may make attempt `attempt` under `maxAttempts` (see STALLED_ATTEMPTS_ALLOWED). */
export function mayRun(attempt: number, maxAttempts: number): boolean {
  return attempt <= maxAttempts + STALLED_ATTEMPTS_ALLOWED;
}

/** What the attempt ledger holds for one invocation. */
export interface LedgerEntry {
  /**
   * Attempts started so far: the function may have run in each (a worker killed mid-call spent
   * one). Undefined in an entry from an older worker, which counted only `throttled`.
   */
  readonly attempts?: number | undefined;
  /** Throttled deliveries so far (adaptive concurrency; older workers also counted deliveries given back here). */
  readonly throttled: number;
}

/** The attempt a redelivery makes, and the throttles before it. */
export interface RedeliveredAttempt {
  readonly attempt: number;
  readonly throttled: number;
}

/**
 * The attempt that delivery number `deliveryCount` (> 1) of an invocation makes, given its ledger
 * entry. No entry: only the first delivery started one (every later attempt is recorded before it
 * runs, and a first delivery that started none records `attempts: 0`). An older worker's entry
 * counted the deliveries that were no attempt: the delivery count less those.
 */
export function redeliveredAttempt(entry: LedgerEntry | undefined, deliveryCount: number): RedeliveredAttempt {
  const throttled = Math.max(0, Math.floor(entry?.throttled ?? 0) || 0);
  if (entry === undefined) return { attempt: 2, throttled: 0 };
  if (entry.attempts === undefined) return { attempt: Math.max(1, deliveryCount - Math.min(throttled, deliveryCount - 1)), throttled };
  return { attempt: Math.max(0, Math.floor(entry.attempts) || 0) + 1, throttled };
}
