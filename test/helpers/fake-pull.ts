import { defer, finalize, Subject, VirtualTimeScheduler, type Observable, type SchedulerLike } from 'rxjs';
import type { Test } from 'tap';
import { Inbox } from './inbox.js';

/** One pull request as the fake source saw it. */
export interface PullRequest<T> {
  readonly max: number;
  delivered: number;
  open: boolean;
  /** Delivers the items in order; throws if the request was already closed. */
  deliver(...items: T[]): void;
  complete(): void;
  error(err: unknown): void;
}

/** What the fake needs of a supervisor (DemandSupervisor, QueueSupervisor) to watch and stop it. */
export interface WatchedSupervisor {
  readonly running: number;
  readonly running$: Observable<unknown>;
  drain(graceMs: number): Promise<unknown>;
}

/**
 * The supervisors' pull port `(max) => Observable<T>`, one Subject per request. It records every
 * request and checks after every change that running + outstanding (asked for by open requests,
 * not yet delivered) never exceeds the concurrency; `violations` lists every breach.
 */
export class FakePull<T> {
  readonly requests: PullRequest<T>[] = [];
  readonly requested = new Inbox<PullRequest<T>>('a pull request');
  readonly violations: string[] = [];
  /** The most running + outstanding ever seen. */
  highWater = 0;
  running: () => number = () => 0;

  constructor(readonly concurrency: number) {}

  outstanding(): number {
    return this.requests.filter((r) => r.open).reduce((sum, r) => sum + r.max - r.delivered, 0);
  }

  check(when: string): void {
    const running = this.running();
    const outstanding = this.outstanding();
    this.highWater = Math.max(this.highWater, running + outstanding);
    if (running + outstanding > this.concurrency) {
      this.violations.push(`${when}: running ${running} + outstanding ${outstanding} > ${this.concurrency}`);
    }
  }

  readonly pull = (max: number): Observable<T> =>
    defer(() => {
      const subject = new Subject<T>();
      const request: PullRequest<T> = {
        max,
        delivered: 0,
        open: true,
        deliver: (...items) => {
          for (const item of items) {
            if (!request.open) throw new Error('delivered on a closed pull request');
            request.delivered += 1;
            subject.next(item);
            this.check(`after delivery ${request.delivered} on pull(${max})`);
          }
        },
        complete: () => subject.complete(),
        error: (err) => subject.error(err),
      };
      this.requests.push(request);
      this.check(`at pull(${max})`);
      this.requested.push(request);
      return subject.pipe(
        finalize(() => {
          request.open = false;
        }),
      );
    });

  /**
   * Counts `supervisor.running` in every check, checks whenever it changes, and at the test's
   * teardown stops watching and drains the supervisor with no grace period.
   */
  watch(t: Test, supervisor: WatchedSupervisor, scheduler?: SchedulerLike): void {
    this.running = () => supervisor.running;
    const watching = supervisor.running$.subscribe(() => this.check('when running changed'));
    t.teardown(async () => {
      watching.unsubscribe();
      const drained = supervisor.drain(0);
      // On virtual time the zero grace period passes only when the clock is moved on.
      if (scheduler instanceof VirtualTimeScheduler) {
        scheduler.maxFrames = scheduler.frame;
        scheduler.flush();
      }
      await drained;
    });
  }
}
