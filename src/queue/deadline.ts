import { describeError, isAsyncFnError, type AsyncFnError } from '../errors.js';
import { ConfirmTimeoutError } from './confirmer-errors.js';
import { QueueUnavailableError } from './errors.js';

/**
 * The moment by which JetStream must have confirmed everything a request waits on (`publish_timeout`):
 * the idempotency claim, the record, the PubAck. One deadline per request, not one per round trip,
 * so a request that needs three round trips still answers within `publish_timeout`.
 */
export interface Deadline {
  /** The budget, ms (`publish_timeout`); named in the 503's reason. */
  readonly budgetMs: number;
  /** When it passes, on the monotonic clock of `now` (ms). */
  readonly atMs: number;
}

/** A deadline `budgetMs` from `nowMs` (monotonic ms, e.g. `performance.now()`). */
export function deadlineAfter(budgetMs: number, nowMs: number): Deadline {
  return { budgetMs, atMs: nowMs + budgetMs };
}

/** Whole ms left before `deadline` at `nowMs`; 0 once it has passed. */
export function remainingMs(deadline: Deadline, nowMs: number): number {
  return Math.max(0, Math.floor(deadline.atMs - nowMs));
}

/**
 * Runs one JetStream round trip (`op`, given the ms left, to pass on as its own request timeout)
 * and settles by the deadline whatever JetStream does: a failure, or no answer in time, is a
 * {@link QueueUnavailableError} (503 with Retry-After). A deadline already passed fails without
 * starting `op`, so nothing is sent that the caller will be told was refused.
 *
 * On time-out `op` keeps running in the background until its own timeout: what it sent may still
 * be stored, so the error says `outcomeUnknown`.
 */
export function confirmWithin<T>(what: string, deadline: Deadline, op: (timeoutMs: number) => Promise<T>, now: () => number = () => performance.now()): Promise<T> {
  const leftMs = remainingMs(deadline, now());
  if (leftMs <= 0) return Promise.reject(timedOut(what, deadline, false));
  // One promise and one timer per round trip: this runs on every async request.
  return new Promise<T>((resolve, reject) => {
    // Timers run before the event loop reads its sockets: after a long turn, a confirmation that
    // came in time may be waiting unread. The deadline is judged after the next read
    // (`setImmediate` runs after the poll phase); a confirmation read then has resolved already.
    const timer = setTimeout(() => setImmediate(() => reject(timedOut(what, deadline, true))), leftMs);
    const fail = (err: unknown): void => {
      clearTimeout(timer);
      reject(asUnavailable(err));
    };
    let pending: Promise<T>;
    try {
      pending = op(leftMs);
    } catch (err) {
      fail(err);
      return;
    }
    pending.then((value) => {
      clearTimeout(timer);
      resolve(value);
    }, fail);
  });
}

/**
 * What {@link confirmWithin} gives a round trip that keeps `deadline` by itself, without a timer
 * and a promise of its own: the ms left, to pass on as the round trip's own time-out. For a write
 * through the confirmer (src/queue/confirmer.ts), whose sweep rejects it with a
 * {@link ConfirmTimeoutError} once they have passed (after the next read, within its sweep
 * interval). Every async request's publish is one: a timer per request cost a sixth of its enqueue
 * (`npm run bench:instructions -- --only gateway.enqueue`). Throws the deadline's time-out when
 * none are left, so nothing is sent that the caller will be told was refused.
 */
export function msLeftFor(what: string, deadline: Deadline, nowMs: number): number {
  const leftMs = remainingMs(deadline, nowMs);
  if (leftMs <= 0) throw timedOut(what, deadline, false);
  return leftMs;
}

/**
 * How a round trip given {@link msLeftFor}'s ms failed, as {@link confirmWithin} says it: its
 * time-out (a {@link ConfirmTimeoutError}, or the 503 the publisher made of one) as the deadline's,
 * anything else as {@link asUnavailable}.
 */
export function failureWithin(what: string, deadline: Deadline, err: unknown): AsyncFnError {
  const cause = err instanceof QueueUnavailableError ? err.cause : err;
  if (cause instanceof ConfirmTimeoutError) return timedOut(what, deadline, true);
  return asUnavailable(err);
}

/** A JetStream failure as a 503; coded errors (413, 400, an earlier 503) pass unchanged. */
export function asUnavailable(err: unknown): AsyncFnError {
  if (isAsyncFnError(err)) return err;
  return new QueueUnavailableError(describeError(err), { cause: err });
}

function timedOut(what: string, deadline: Deadline, sent: boolean): QueueUnavailableError {
  return new QueueUnavailableError(`JetStream did not confirm ${what} within publish_timeout (${deadline.budgetMs} ms)`, {
    outcomeUnknown: sent,
  });
}
