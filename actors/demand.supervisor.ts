import type { Observable, SchedulerLike } from './rx.js';
import { LaneSupervisor } from './lane.supervisor.js';

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
 * The one consumer shape of asyncfn for a single source: pulls only as many items as it has free
 * slots and handles each with `handle`, so a message never waits in a client buffer while its ack
 * deadline burns. Pure of NATS: the source is a `pull(max)` port. The durable callback retrier and
 * the delayed scheduler run on it; a queue's invocations run on the {@link LaneSupervisor} it is
 * built on, which shares the slots between several sources (lanes).
 *
 * Demand drives pulls: `free = concurrency - running - requested`, where `requested` counts items
 * asked for by open pull requests and not yet delivered. With no request open every free slot is
 * pulled at once (nothing else would ever free it); while one is open, a new request waits for a
 * batch of free slots, so settling one item at a time does not flood the server with requests
 * for one message each.
 */
export class DemandSupervisor<T> {
  readonly #lanes: LaneSupervisor<T>;

  constructor(opts: DemandSupervisorOptions<T>) {
    this.#lanes = new LaneSupervisor<T>({
      concurrency: opts.concurrency,
      handle: (item) => opts.handle(item),
      events: {
        pullFailed: (_lane, error) => opts.events?.pullFailed?.(error),
        handleFailed: (item, error) => opts.events?.handleFailed?.(item, error),
      },
      pullRetryDelayMs: opts.pullRetryDelayMs,
      batchThreshold: opts.batchThreshold,
      scheduler: opts.scheduler,
    });
    this.#lanes.addLane({ id: '', pull: opts.pull });
  }

  /** Items being handled now. */
  get running(): number {
    return this.#lanes.running;
  }

  /** Observable count of items being handled. */
  get running$(): Observable<number> {
    return this.#lanes.running$;
  }

  /** Items asked for by open pull requests and not yet delivered. */
  get requested(): number {
    return this.#lanes.requested;
  }

  start(): void {
    this.#lanes.start();
  }

  /**
   * Graceful stop: pull nothing more (open requests are ended), then wait up to `graceMs` for the
   * items being handled. `Infinity` waits for all of them. Resolves with how many were still
   * running; the caller decides what to do with those (their sources redeliver them anyway).
   */
  drain(graceMs: number): Promise<DemandDrainResult> {
    return this.#lanes.drain(graceMs);
  }
}
