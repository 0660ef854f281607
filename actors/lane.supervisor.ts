import {
  asapScheduler,
  asyncScheduler,
  BehaviorSubject,
  catchError,
  debounceTime,
  EMPTY,
  filter,
  finalize,
  firstValueFrom,
  NEVER,
  race,
  Subject,
  take,
  tap,
  timer,
  Subscription,
  type Observable,
  type SchedulerLike,
} from './rx.js';

/**
 * One source of work among several sharing a worker's slots: a function's pull consumer, one
 * concurrency key's, or a queue's own. Pure of NATS: a lane is a `pull(max)` port plus its limits.
 */
export interface Lane<T> {
  /** Unique among the supervisor's lanes. */
  readonly id: string;
  /**
   * Lanes of one group (a function's own lane and its keys' lanes) share the group's limit;
   * absent = a group of its own.
   */
  readonly group?: string | undefined;
  /**
   * The most items of this lane running and requested together on this worker: its consumer's
   * `max_ack_pending` (a function's or a concurrency key's limit), which JetStream enforces over
   * every worker, so no pull beyond it could be served. Absent = no limit of its own.
   */
  readonly limit?: number | undefined;
  /** Opens one pull request for at most `max` items; completes when it ends (filled, expired, cut). */
  pull(max: number): Observable<T>;
  /**
   * Rate-limited lanes take tokens before they pull: how many of `n` may be pulled now, and when to
   * ask again if fewer. A lane with tokens is pulled only when it is known to have a backlog.
   */
  acquire?(n: number): Promise<{ readonly granted: number; readonly retryInMs: number }>;
}

/**
 * A handler's hold on its slot without a promise: the supervisor hands it the slot's `release`
 * (one function per lane, not one per item), to be called once when the item is done. A queue's
 * invocations hold their slots this way: a promise and the frame awaiting it, kept for each item
 * in flight, are copied by every young-generation collection they outlive (BENCHMARKS.md, "What
 * an in-flight invocation holds").
 */
export interface SlotHold {
  holdUntilFree(release: () => void): void;
}

export interface LaneSupervisorOptions<T> {
  /** Items handled at once over all lanes; at most this many are requested and running together. */
  readonly concurrency: number;
  /**
   * Handles one item of `lane`; the slot is held until the promise settles, or until a
   * {@link SlotHold} calls its release (`undefined`: no slot taken).
   */
  readonly handle: (item: T, lane: string) => PromiseLike<void> | SlotHold | undefined;
  /**
   * Items still waiting in the lane after this one (JetStream's `info.pending` of the message): a
   * lane whose last delivery said 0 has no known backlog. Absent, every lane that delivered is
   * taken to have more.
   */
  readonly waitingAfter?: (item: T) => number | undefined;
  /** The most items of a group running and requested together on this worker; Infinity = no limit of its own. */
  readonly groupLimit?: (group: string) => number;
  readonly events?: {
    pullFailed?(lane: string, error: unknown): void;
    handleFailed?(item: T, error: unknown): void;
  };
  /** Pause of a lane after a failed pull, ms; default 1000. */
  readonly pullRetryDelayMs?: number;
  /** Free slots needed before a lane with a pull open gets a second one; default `ceil(concurrency / 4)`. */
  readonly batchThreshold?: number;
  readonly scheduler?: SchedulerLike;
}

interface LaneState<T> {
  readonly lane: Lane<T>;
  readonly group: string;
  running: number;
  /** Items asked for by this lane's open pulls and not yet delivered. */
  requested: number;
  readonly pulls: Set<Subscription>;
  /** Known to have items waiting: its last delivery said so, or a hint from the outside. */
  backlog: boolean;
  /** A pull failed or the lane ran out of tokens: not pulled before this scheduler time. */
  pausedUntil: number;
  /** Taking tokens for `requested` items (rate-limited lanes). */
  acquiring: boolean;
  /** Removed while items were running: dropped when the last settles. */
  removing: boolean;
  /** Frees one of this lane's slots: made once per lane, handed to every item's hold. */
  readonly release: () => void;
}

interface GroupState {
  running: number;
  requested: number;
}

/**
 * Fair, demand-driven pulling over several lanes: asyncfn's one consumer rule (pull only as many
 * items as there are free slots, so nothing waits in a client buffer while its ack deadline
 * burns) with the slots shared round-robin between lanes. With one lane it is the
 * {@link DemandSupervisor} (which is this with a single lane).
 *
 * Each scheduling round splits the free slots between the lanes known to have a backlog, up to
 * each one's fair share (`concurrency / lanes with a backlog`) less what it runs already, then
 * gives what is left to any of them (work-conserving), and only then opens long polls on lanes
 * with no known backlog (so a quiet lane's first item is not delayed by a discovery poll while the
 * worker has room). When a lane with a backlog needs slots that idle long polls hold, those polls
 * are ended. A burst of one function therefore cannot starve another: as slots free up, each
 * lane with work gets its share.
 */
export class LaneSupervisor<T> {
  readonly #opts: LaneSupervisorOptions<T>;
  readonly #scheduler: SchedulerLike;
  readonly #batchThreshold: number;
  readonly #lanes = new Map<string, LaneState<T>>();
  readonly #groups = new Map<string, GroupState>();
  readonly #running$ = new BehaviorSubject(0);
  readonly #demand$ = new Subject<void>();
  /** The timers that end lanes' pauses: a drain cancels them, so a stopped supervisor holds no timer (a rate limit's may be an hour). */
  readonly #pauses = new Subscription();
  #requested = 0;
  /** Where the next round starts, so no lane is always served first. */
  #cursor = 0;
  #scheduling: Subscription | undefined;
  #stopped = false;
  readonly #idlePulls = new Map<Subscription, LaneState<T>>();
  /**
   * The last round left lanes with work short of their fair shares, every slot taken by pulls that
   * were not long polls: a pull that becomes one then (its lane's last delivery said nothing waits
   * behind it) runs a round at once, which takes its slots back.
   */
  #short = false;

  constructor(opts: LaneSupervisorOptions<T>) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${opts.concurrency}`);
    }
    this.#opts = opts;
    this.#scheduler = opts.scheduler ?? asyncScheduler;
    this.#batchThreshold = Math.max(1, opts.batchThreshold ?? Math.ceil(opts.concurrency / 4));
  }

  /** Items being handled now, over all lanes. */
  get running(): number {
    return this.#running$.value;
  }

  get running$(): Observable<number> {
    return this.#running$.asObservable();
  }

  /** Items asked for by open pulls and not yet delivered, over all lanes. */
  get requested(): number {
    return this.#requested;
  }

  /** Each lane's running and requested items, for gauges and tests. */
  lanes(): ReadonlyArray<{ readonly id: string; readonly running: number; readonly requested: number; readonly backlog: boolean }> {
    return [...this.#lanes.values()].map((s) => ({ id: s.lane.id, running: s.running, requested: s.requested, backlog: s.backlog }));
  }

  has(id: string): boolean {
    const state = this.#lanes.get(id);
    return state !== undefined && !state.removing;
  }

  /** Adds a lane (pulled from the next round). Adding an id already there only refreshes its backlog hint. */
  addLane(lane: Lane<T>, backlog = false): void {
    const existing = this.#lanes.get(lane.id);
    if (existing && !existing.removing) {
      if (backlog) this.hint(lane.id, true);
      return;
    }
    if (existing) this.#drop(existing);
    const group = lane.group ?? lane.id;
    const state: LaneState<T> = {
      lane,
      group,
      running: 0,
      requested: 0,
      pulls: new Set(),
      backlog,
      pausedUntil: 0,
      acquiring: false,
      removing: false,
      release: () => this.#release(state),
    };
    this.#lanes.set(lane.id, state);
    if (!this.#groups.has(group)) this.#groups.set(group, { running: 0, requested: 0 });
    this.#demand$.next();
  }

  /**
   * Removes a lane: its pulls are ended now, the lane itself once its running items have settled
   * (they keep their slots until then).
   */
  removeLane(id: string): void {
    const state = this.#lanes.get(id);
    if (!state) return;
    state.removing = true;
    for (const pull of [...state.pulls]) pull.unsubscribe();
    if (state.running === 0) this.#drop(state);
  }

  /**
   * What is known from outside (a discovery poll): whether the lane has items JetStream would
   * deliver now. Without, the pulls it has open are long polls (they wait for a retry's back-off
   * to end, for room under the lane's limit, or for new items), and a lane with work may take
   * their slots back.
   */
  hint(id: string, backlog: boolean): void {
    const state = this.#lanes.get(id);
    if (!state) return;
    if (!backlog && this.#markIdle(state)) this.#demand$.next();
    if (state.backlog === backlog) return;
    state.backlog = backlog;
    if (backlog) this.#demand$.next();
  }

  /** Makes the lane's open pulls long polls; whether any was not one yet. */
  #markIdle(state: LaneState<T>): boolean {
    let changed = false;
    for (const pull of state.pulls) {
      if (this.#idlePulls.has(pull)) continue;
      this.#idlePulls.set(pull, state);
      changed = true;
    }
    return changed;
  }

  /** Runs a scheduling round soon (a lane's limit rose, tokens may be back). */
  poke(): void {
    this.#demand$.next();
  }

  start(): void {
    if (this.#scheduling || this.#stopped) return;
    // Slots freed in one burst (a batch settling together) become one round, not many.
    this.#scheduling = this.#demand$.pipe(debounceTime(0, asapScheduler)).subscribe(() => this.#schedule());
    this.#demand$.next();
  }

  /**
   * Graceful stop: pull nothing more (open pulls are ended), then wait up to `graceMs` for the
   * running items. Resolves with how many were still running.
   */
  async drain(graceMs: number): Promise<{ readonly running: number }> {
    this.#stopped = true;
    this.#scheduling?.unsubscribe();
    this.#pauses.unsubscribe();
    for (const state of this.#lanes.values()) for (const pull of [...state.pulls]) pull.unsubscribe();
    const idle = this.#running$.pipe(
      filter((n) => n === 0),
      take(1),
    );
    const grace = Number.isFinite(graceMs) ? timer(Math.max(0, graceMs), this.#scheduler) : NEVER;
    await firstValueFrom(race(idle, grace));
    return { running: this.#running$.value };
  }

  /** How many more items the lane may run and request: under its group's limit and its own. */
  #room(state: LaneState<T>): number {
    const own = state.lane.limit === undefined ? Infinity : state.lane.limit - state.running - state.requested;
    const limit = this.#opts.groupLimit?.(state.group) ?? Infinity;
    if (limit === Infinity) return own;
    const group = this.#groups.get(state.group)!;
    return Math.min(own, limit - group.running - group.requested);
  }

  /** Whether the lane may get a pull of `n` now, given the pulls it already has. */
  #pullable(state: LaneState<T>, now: number): boolean {
    return !state.removing && !state.acquiring && state.pausedUntil <= now && this.#room(state) > 0;
  }

  #schedule(): void {
    if (this.#stopped) return;
    const now = this.#scheduler.now();
    const order = this.#roundOrder();
    const busy = order.filter((s) => s.backlog && this.#pullable(s, now));
    let free = this.#opts.concurrency - this.#running$.value - this.#requested;
    const share = Math.max(1, Math.floor(this.#opts.concurrency / Math.max(1, busy.length)));
    const wanted = busy.length === 0 ? 0 : this.#belowShares(busy, share);
    // Slots that quiet lanes' long polls hold go to lanes with work, up to their fair shares.
    if (free < wanted && this.#idlePulls.size > 0) free += this.#reclaimIdlePulls(wanted - free);
    this.#short = free < wanted;
    if (free <= 0) return;
    if (busy.length > 0) {
      // Fair shares first, then what is left to anyone with work (nothing stays idle that could run).
      for (const state of busy) {
        if (free <= 0) break;
        free -= this.#open(state, Math.min(free, share - state.running - state.requested));
      }
      for (const state of busy) {
        if (free <= 0) break;
        free -= this.#open(state, free);
      }
      return;
    }
    // No known backlog anywhere: long polls, so a quiet lane's next item is taken at once.
    const quiet = order.filter((s) => !s.backlog && s.lane.acquire === undefined && s.pulls.size === 0 && this.#pullable(s, now));
    if (quiet.length === 0) {
      // A lane with a pull already open gets a second one only for a batch of freed slots, so that
      // settling one item at a time does not open one pull request per item.
      for (const state of order) {
        if (free < this.#batchThreshold) break;
        if (state.lane.acquire === undefined && this.#pullable(state, now)) free -= this.#open(state, free);
      }
      return;
    }
    const pollShare = Math.max(1, Math.floor(free / quiet.length));
    for (const state of quiet) {
      if (free <= 0) break;
      free -= this.#open(state, Math.min(free, pollShare), true);
    }
  }

  /** How many slots the lanes with work lack of their fair shares (within their limits). */
  #belowShares(busy: ReadonlyArray<LaneState<T>>, share: number): number {
    let wanted = 0;
    for (const s of busy) wanted += Math.max(0, Math.min(share - s.running - s.requested, this.#room(s)));
    return wanted;
  }

  /** The lanes, starting after the one served first last round. */
  #roundOrder(): Array<LaneState<T>> {
    const all = [...this.#lanes.values()];
    if (all.length <= 1) return all;
    const start = this.#cursor % all.length;
    this.#cursor = start + 1;
    return start === 0 ? all : all.slice(start).concat(all.slice(0, start));
  }

  /** Ends long polls of lanes with no known backlog that have delivered nothing; returns the slots freed. */
  #reclaimIdlePulls(wanted: number): number {
    let freed = 0;
    for (const [pull, state] of [...this.#idlePulls]) {
      if (freed >= wanted) break;
      if (state.backlog) continue;
      const before = state.requested;
      pull.unsubscribe();
      freed += before - state.requested;
    }
    return freed;
  }

  /**
   * Opens a pull of up to `want` items on the lane (bounded by its room under its limits and,
   * with a second pull, by the batch threshold); returns how many slots it reserved.
   */
  #open(state: LaneState<T>, want: number, idle = false): number {
    if (state.pulls.size > 0 && want < this.#batchThreshold) return 0;
    const n = Math.min(want, this.#room(state));
    if (n <= 0 || !Number.isFinite(n)) return 0;
    this.#reserve(state, n);
    if (state.lane.acquire === undefined) {
      const pull = this.#pull(state, n);
      // A pull on a lane with nothing known to wait is a long poll: a lane with work may take its slots.
      if ((idle || !state.backlog) && pull) this.#idlePulls.set(pull, state);
      return n;
    }
    // Tokens first: a rate-limited item stays in JetStream until it may run.
    state.acquiring = true;
    state.lane.acquire(n).then(
      ({ granted, retryInMs }) => {
        state.acquiring = false;
        this.#unreserve(state, n);
        const allowed = Math.max(0, Math.min(granted, n));
        if (allowed < n) this.#pauseFor(state, retryInMs);
        if (allowed > 0 && !this.#stopped && !state.removing) {
          this.#reserve(state, allowed);
          this.#pull(state, allowed);
        }
        this.#demand$.next();
      },
      (error: unknown) => {
        state.acquiring = false;
        this.#unreserve(state, n);
        this.#opts.events?.pullFailed?.(state.lane.id, error);
        this.#pauseFor(state, this.#opts.pullRetryDelayMs ?? 1000);
      },
    );
    return n;
  }

  #reserve(state: LaneState<T>, n: number): void {
    state.requested += n;
    this.#groups.get(state.group)!.requested += n;
    this.#requested += n;
  }

  #unreserve(state: LaneState<T>, n: number): void {
    state.requested -= n;
    this.#groups.get(state.group)!.requested -= n;
    this.#requested -= n;
  }

  #pauseFor(state: LaneState<T>, ms: number): void {
    const until = this.#scheduler.now() + ms;
    state.pausedUntil = until;
    // The timer ends the pause itself: a timer may fire a little before the clock says `until`.
    let pause: Subscription | undefined = undefined;
    pause = this.#scheduler.schedule(() => {
      if (pause !== undefined) this.#pauses.remove(pause);
      if (state.pausedUntil === until) state.pausedUntil = 0;
      this.#demand$.next();
    }, ms);
    this.#pauses.add(pause);
  }

  #pull(state: LaneState<T>, max: number): Subscription | undefined {
    let outstanding = max;
    let failed = false;
    // Registered before subscribing: a source may deliver, or end, synchronously.
    const holder = new Subscription();
    state.pulls.add(holder);
    holder.add(
      state.lane
        .pull(max)
        .pipe(
          // A source that sends more than it was asked for must not get past the slot count.
          take(max),
          tap((item) => {
            outstanding -= 1;
            this.#unreserve(state, 1);
            const waiting = this.#opts.waitingAfter?.(item);
            state.backlog = waiting === undefined || waiting > 0;
          }),
          catchError((error: unknown) => {
            failed = true;
            this.#opts.events?.pullFailed?.(state.lane.id, error);
            return EMPTY;
          }),
          finalize(() => {
            this.#unreserve(state, outstanding);
            outstanding = 0;
            state.pulls.delete(holder);
            this.#idlePulls.delete(holder);
            if (failed) this.#pauseFor(state, this.#opts.pullRetryDelayMs ?? 1000);
            this.#demand$.next();
          }),
        )
        .subscribe((item) => {
          this.#admit(state, item);
          // What this pull still asks for waits for messages not yet published when nothing is
          // left behind the one delivered: a lane with work may take those slots back.
          if (state.backlog) this.#idlePulls.delete(holder);
          else if (state.pulls.has(holder) && !this.#idlePulls.has(holder)) {
            this.#idlePulls.set(holder, state);
            // Else a lane left short waits for the next slot to free, which may be hours away.
            if (this.#short) this.#demand$.next();
          }
        }),
    );
    return state.pulls.has(holder) ? holder : undefined;
  }

  #admit(state: LaneState<T>, item: T): void {
    let handling: PromiseLike<void> | SlotHold | undefined;
    try {
      handling = this.#opts.handle(item, state.lane.id);
    } catch (error) {
      this.#opts.events?.handleFailed?.(item, error);
    }
    if (handling === undefined) {
      this.#demand$.next();
      return;
    }
    state.running += 1;
    this.#groups.get(state.group)!.running += 1;
    this.#running$.next(this.#running$.value + 1);
    if ('holdUntilFree' in handling) handling.holdUntilFree(state.release);
    else void this.#settle(state, item, handling);
  }

  /** Frees the item's slot once its promise settles: a method, since V8 drops the optimized code of closures made per item at every full collection. */
  async #settle(state: LaneState<T>, item: T, handling: PromiseLike<void>): Promise<void> {
    try {
      await handling;
    } catch (error) {
      this.#opts.events?.handleFailed?.(item, error);
    }
    this.#release(state);
  }

  #release(state: LaneState<T>): void {
    state.running -= 1;
    this.#groups.get(state.group)!.running -= 1;
    if (state.removing && state.running === 0) this.#drop(state);
    this.#running$.next(this.#running$.value - 1);
    this.#demand$.next();
  }

  #drop(state: LaneState<T>): void {
    if (this.#lanes.get(state.lane.id) !== state) return;
    this.#lanes.delete(state.lane.id);
    const group = this.#groups.get(state.group);
    if (group && group.running === 0 && group.requested === 0 && ![...this.#lanes.values()].some((s) => s.group === state.group)) {
      this.#groups.delete(state.group);
    }
  }
}
