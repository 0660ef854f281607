import {
  asapScheduler,
  asyncScheduler,
  BehaviorSubject,
  catchError,
  debounceTime,
  defer,
  filter,
  finalize,
  firstValueFrom,
  ignoreElements,
  map,
  mergeMap,
  NEVER,
  race,
  startWith,
  Subject,
  take,
  takeUntil,
  tap,
  timer,
  type Observable,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';

/** Where a demand supervisor reports what it cannot handle itself; the wiring logs and counts it. */
export interface DemandEvents<T> {
  /** A pull request failed; the supervisor asks again after `pullRetryDelayMs`. */
  pullFailed?(error: unknown): void;
  /**
   * `handle` threw or rejected. Handlers settle their own failures (nak, dead letter), so this is
   * a bug report; the slot is freed anyway and the item is left to its source (JetStream
   * redelivers an unsettled message after ack_wait).
   */
  handleFailed?(item: T, error: unknown): void;
}

export interface DemandSupervisorOptions<T> {
  /** Items handled at once; at most this many are requested and running together. */
  readonly concurrency: number;
  /**
   * Opens one pull request for at most `max` items and completes when the request ends (filled,
   * expired, or cut by a disconnect). Unsubscribing ends the request.
   */
  readonly pull: (max: number) => Observable<T>;
  /**
   * Handles one item. Its slot is held until the returned promise settles; a handler that returns
   * nothing (`undefined`) finished synchronously and took no slot (e.g. a message it only nak-ed).
   */
  readonly handle: (item: T) => PromiseLike<void> | undefined;
  readonly events?: DemandEvents<T>;
  /** Pause after a failed pull before asking again, ms; default 1000. */
  readonly pullRetryDelayMs?: number;
  /**
   * Free slots needed before a pull is opened while another is still open; default
   * `ceil(concurrency / 4)`, at least 1.
   */
  readonly batchThreshold?: number;
  /** Scheduler for the pull-retry and drain-grace timers; a virtual one in tests. Default asyncScheduler. */
  readonly scheduler?: SchedulerLike;
}

/** What a drain left behind. */
export interface DemandDrainResult {
  /** Items still being handled when the grace period ended (0 when all finished in time). */
  readonly running: number;
}

/**
 * The one consumer shape of asyncfn: pulls only as many items as it has free slots and handles
 * each with `handle`, so a message never waits in a client buffer while its ack deadline burns.
 * Pure of NATS: the source is a `pull(max)` port.
 *
 * Demand drives pulls: `free = concurrency - running - requested`, where `requested` counts items
 * asked for by open pull requests and not yet delivered. With no request open every free slot is
 * pulled at once (nothing else would ever free it); while one is open, a new request waits for a
 * batch of free slots, so settling one item at a time does not flood the server with requests
 * for one message each.
 */
export class DemandSupervisor<T> {
  readonly #opts: DemandSupervisorOptions<T>;
  readonly #scheduler: SchedulerLike;
  readonly #batchThreshold: number;
  readonly #running$ = new BehaviorSubject(0);
  readonly #demand$ = new Subject<void>();
  readonly #stopping$ = new Subject<void>();
  #requested = 0;
  #openPulls = 0;
  #pulling: Subscription | undefined;
  #stopped = false;

  constructor(opts: DemandSupervisorOptions<T>) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${opts.concurrency}`);
    }
    this.#opts = opts;
    this.#scheduler = opts.scheduler ?? asyncScheduler;
    this.#batchThreshold = Math.max(1, opts.batchThreshold ?? Math.ceil(opts.concurrency / 4));
  }

  /** Items being handled now. */
  get running(): number {
    return this.#running$.value;
  }

  /** Observable count of items being handled. */
  get running$(): Observable<number> {
    return this.#running$.asObservable();
  }

  /** Items asked for by open pull requests and not yet delivered. */
  get requested(): number {
    return this.#requested;
  }

  start(): void {
    if (this.#pulling || this.#stopped) return;
    this.#pulling = this.#demand$
      .pipe(
        startWith(undefined),
        // Slots freed in one burst (a batch settling together) become one pull, not many.
        debounceTime(0, asapScheduler),
        map(() => this.#nextPullSize()),
        filter((n) => n > 0),
        mergeMap((n) => this.#pullUpTo(n)),
        takeUntil(this.#stopping$),
      )
      .subscribe((item) => this.#admit(item));
  }

  /**
   * Graceful stop: pull nothing more (open requests are ended), then wait up to `graceMs` for the
   * items being handled. `Infinity` waits for all of them. Resolves with how many were still
   * running; the caller decides what to do with those (their sources redeliver them anyway).
   */
  async drain(graceMs: number): Promise<DemandDrainResult> {
    this.#stopped = true;
    this.#stopping$.next();
    this.#pulling?.unsubscribe();
    const idle = this.#running$.pipe(
      filter((n) => n === 0),
      take(1),
    );
    // A non-finite delay would fire at once on Node's timers: wait for idle only.
    const grace = Number.isFinite(graceMs) ? timer(Math.max(0, graceMs), this.#scheduler) : NEVER;
    await firstValueFrom(race(idle, grace));
    return { running: this.#running$.value };
  }

  #nextPullSize(): number {
    const free = this.#opts.concurrency - this.#running$.value - this.#requested;
    if (free <= 0) return 0;
    if (this.#openPulls === 0) return free;
    return free >= this.#batchThreshold ? free : 0;
  }

  #pullUpTo(max: number): Observable<T> {
    return defer(() => {
      this.#requested += max;
      this.#openPulls += 1;
      let received = 0;
      return this.#opts.pull(max).pipe(
        // A source that sends more than it was asked for must not get past the slot count.
        take(max),
        tap(() => {
          received += 1;
          this.#requested -= 1;
        }),
        catchError((error: unknown) => {
          this.#opts.events?.pullFailed?.(error);
          // The request stays counted as open until the delay has passed: no pull before then.
          return timer(this.#opts.pullRetryDelayMs ?? 1000, this.#scheduler).pipe(ignoreElements());
        }),
        finalize(() => {
          this.#requested -= max - received;
          this.#openPulls -= 1;
          this.#demand$.next();
        }),
      );
    });
  }

  #admit(item: T): void {
    let handling: PromiseLike<void> | undefined;
    try {
      handling = this.#opts.handle(item);
    } catch (error) {
      this.#opts.events?.handleFailed?.(item, error);
    }
    if (handling === undefined) {
      this.#demand$.next();
      return;
    }
    this.#running$.next(this.#running$.value + 1);
    handling.then(this.#release, (error: unknown) => {
      this.#opts.events?.handleFailed?.(item, error);
      this.#release();
    });
  }

  /** Frees one slot; one function for every item (this is the hot path). */
  readonly #release = (): void => {
    this.#running$.next(this.#running$.value - 1);
    this.#demand$.next();
  };
}
