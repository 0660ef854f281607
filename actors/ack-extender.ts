import { asyncScheduler, interval, type SchedulerLike, type Subscription } from './rx.js';
import type { MessageHandle } from './invocation.types.js';

/**
 * One timer per queue that extends the ack deadline of every in-flight message, like BullMQ's
 * LockManager renews every active job's lock. A timer per message would cost a timer per job at
 * 10,000 in flight; one sweep costs one tick.
 */
export class AckExtender {
  #ticker: Subscription | undefined;
  /** When the last timed sweep ran (scheduler time). */
  #sweptAtMs = 0;

  /**
   * @param intervalMs how often to sweep; about ack_wait / 3 so two sweeps can be missed safely.
   * @param scheduler RxJS scheduler; a virtual one in tests.
   */
  constructor(
    private readonly intervalMs: number,
    private readonly scheduler: SchedulerLike = asyncScheduler,
    /** Told how many messages each sweep extended (for the ack-extension metric). */
    private readonly onSweep: (extended: number) => void,
    /** The messages in flight now: the supervisor's registry, read at each sweep (no copy kept here). */
    private readonly inFlight: () => Iterable<MessageHandle>,
  ) {}

  start(): void {
    if (this.#ticker) return;
    this.#sweptAtMs = this.scheduler.now();
    this.#ticker = interval(this.intervalMs, this.scheduler).subscribe(() => this.sweepIfDue(this.scheduler.now()));
  }

  /**
   * Sweeps if a whole interval has passed since the last sweep. The ticker calls it, and so does
   * the supervisor after each transition of a machine: a burst of thousands of HTTP responses
   * (long jobs ending at once) is handled in one I/O phase of the event loop, seconds long, during
   * which no timer fires. The deadlines of the invocations still waiting would pass meanwhile;
   * a check per transition (a clock read) keeps them extended.
   */
  sweepIfDue(nowMs: number): void {
    if (this.#ticker === undefined || nowMs - this.#sweptAtMs < this.intervalMs) return;
    this.#sweptAtMs = nowMs;
    this.sweep();
  }

  /** Calls `working()` on every message in flight; returns how many were extended. */
  sweep(): number {
    let extended = 0;
    for (const handle of this.inFlight()) {
      handle.working();
      extended += 1;
    }
    if (extended > 0) this.onSweep(extended);
    return extended;
  }

  stop(): void {
    this.#ticker?.unsubscribe();
    this.#ticker = undefined;
  }
}

/** The sweep interval for a consumer's ack_wait: a third of it, at least 100 ms. */
export function ackExtendIntervalMs(ackWaitMs: number): number {
  return Math.max(100, Math.floor(ackWaitMs / 3));
}
