import type { SnapshotFrom } from 'xstate';
import { asyncScheduler, interval, type Observable, type SchedulerLike, type Subscription } from './rx.js';
import { AckExtender } from './ack-extender.js';
import { LaneSupervisor, type Lane, type SlotHold } from './lane.supervisor.js';
import type { InvocationMachine, InvocationSettlement } from './invocation.machine.js';
import { MachineRunner, type MachineRun, type RunObserver } from './machine.runner.js';
import type { DeadLetterReason, FunctionOutcome, Invocation, InvocationSettings, MessageHandle, ResultStorage } from './invocation.types.js';

/** One message as the pull source hands it over: decoded, or the reasons it cannot be. */
export interface Delivery {
  readonly message: MessageHandle;
  readonly decoded:
    | { readonly ok: true; readonly invocation: Invocation }
    /** `raw` is the undecodable message itself, opaque here, handed to the poison port. */
    | { readonly ok: false; readonly reasons: readonly string[]; readonly raw: unknown };
  /** Messages still waiting in the same consumer after this one (JetStream's `info.pending`), if known. */
  readonly waiting?: number | undefined;
}

/** The id of a queue's own lane: its plain subject and consumer. Function lanes are added by the wiring. */
export const QUEUE_LANE = '';

/** How one invocation's delivery ended, for logs and metrics. */
export interface SettlementReport {
  readonly queue: string;
  /** The lane it was pulled from (QUEUE_LANE for the queue's own consumer). */
  readonly lane: string;
  readonly invocation: Invocation;
  readonly attempt: number;
  readonly settlement: InvocationSettlement | 'crashed';
  readonly outcome?: FunctionOutcome | undefined;
  readonly deadLetter?: DeadLetterReason | undefined;
  readonly callbackError?: string | undefined;
  readonly settleError?: string | undefined;
  /** Why the final record could not be written (the invocation was settled all the same). */
  readonly recordError?: string | undefined;
  /** Set when the caller asked to keep the result. */
  readonly resultStorage?: ResultStorage | undefined;
  readonly policyWarnings: readonly string[];
  /** Deliveries of this invocation throttled before this one (adaptive concurrency); 0 when none or not known. */
  readonly throttledDeliveries?: number | undefined;
  /** Why the attempt ledger could not be read or written (the delivery went on without it). */
  readonly ledgerError?: string | undefined;
  /** `heldElsewhere`: the worker that still runs the invocation. */
  readonly heldBy?: string | undefined;
}

/** What a drain left behind. */
export interface DrainResult {
  /** Invocations handed back to JetStream unfinished (nak, no delay). */
  readonly released: number;
  /** Invocations still delivering a callback or an ack when the grace period ended. */
  readonly unsettled: number;
}

/** Where the supervisor reports what happened; the worker wiring logs it (and counts it, #4). */
export interface SupervisorEvents {
  /** A delivery was admitted; `state` is where its machine settled first (`invoking` unless skipped). */
  started?(queue: string, invocation: Invocation, attempt: number, state: string): void;
  /**
   * Every state an invocation passes through, eventless ones included. Costly (XState inspection
   * of every microstep): provide it only when it is logged.
   */
  transition?(queue: string, invocation: Invocation, state: string, attempt: number): void;
  settled(report: SettlementReport): void;
  poison(queue: string, reasons: readonly string[]): void;
  /** One ack-extend sweep extended `count` in-flight messages. */
  extended?(queue: string, count: number): void;
  pullFailed(queue: string, error: unknown): void;
  /**
   * A second delivery of a call id that runs here was kept under the running attempt (JetStream's
   * ack_wait ran out on it, the process starved of CPU; its deadline is extended again). It
   * started no attempt, and the attempt ledger records none for it.
   */
  duplicate?(queue: string, invocation: Invocation): void;
}

export interface QueueSupervisorOptions {
  readonly queue: string;
  /** Most invocations running at once on this worker (OpenFaaS `max_inflight`). */
  readonly maxInflight: number;
  readonly ackExtendIntervalMs: number;
  /** The queue's own lane (its plain subject): opens one pull request for at most `max` messages. */
  readonly pull: (max: number) => Observable<Delivery>;
  /** The most invocations of a lane group (a function) running and requested at once here; default no limit. */
  readonly groupLimit?: (group: string) => number;
  /** The invocation machine with its effects provided. */
  readonly machine: InvocationMachine;
  /** Policy, cancellation, clock and jitter for one delivery. */
  readonly settingsFor: (invocation: Invocation) => InvocationSettings;
  /**
   * Stores an undecodable message in the dead letters and settles it. A poison message never
   * occupies a slot; if this rejects the message is left for redelivery.
   */
  readonly handlePoison: (message: MessageHandle, reasons: readonly string[], raw: unknown) => Promise<void>;
  readonly events: SupervisorEvents;
  /**
   * An invocation still calling its function this long after its delivery is told `running`
   * (its machine records it), ms; default 250. Most invocations finish sooner: their record goes
   * from queued straight to its final state, one write fewer.
   */
  readonly runningAfterMs?: number;
  /** Pause after a failed pull before asking again, ms; default 1000. */
  readonly pullRetryDelayMs?: number;
  /** Scheduler for the supervisor's timers (pull retry, ack-extend sweep, drain grace); virtual in tests. */
  readonly scheduler?: SchedulerLike;
}

/** One in-flight invocation, as the supervisor's registry keeps it. */
interface InFlight {
  readonly run: MachineRun<InvocationMachine>;
  readonly message: MessageHandle;
  /** Scheduler time of the delivery, ms. */
  readonly admittedAtMs: number;
  /** The lane it was pulled from (QUEUE_LANE for the queue's own consumer). */
  readonly lane: string;
  readonly invocation: Invocation;
  /** Resolves once its machine is done (the slot's promise). */
  readonly finished: Promise<void>;
}

/**
 * States in which a machine has given its delivery back to JetStream (a retry's or a throttle's
 * nak) and only waits for the server's confirmation: the next delivery of its invocation may
 * arrive before that, and is then the next attempt, not a duplicate.
 */
const GIVEN_BACK = new Set(['retrying', 'throttling']);

/** What an admission tells its supervisor: one object per supervisor, not closures per delivery. */
interface AdmissionHost {
  /** Reports a state change; undefined when nobody listens to transitions. */
  readonly transition: ((invocation: Invocation, state: string, attempt: number) => void) | undefined;
  /** The machine's initial state, reported before the first microstep it resolves its eventless transition in. */
  readonly initialState: string;
  /** The machine is done (or crashed): forget it, free its slot, report it. */
  settle(admission: Admission, snapshot: MachineRun<InvocationMachine>['snapshot'], crashed: boolean): void;
}

/**
 * One admitted delivery: its registry entry, its machine's observer and its hold on the slot, as
 * one object. A drain's invocation outlives a young-generation collection or two, so what it keeps
 * is copied and promoted; one object here replaces the closures, entry, observer, promise and
 * awaiting frame it took before (BENCHMARKS.md, "What a drain promotes" and "What an in-flight
 * invocation holds").
 */
class Admission implements InFlight, RunObserver<InvocationMachine>, SlotHold {
  run!: MachineRun<InvocationMachine>;
  /** The slot's release, once the lane supervisor has handed it over; `noop` after it is called. */
  #release: () => void = noop;
  #freed = false;
  /** Settles `finished`, made only when something waits for it (a retry's early redelivery). */
  #resolveFinished: (() => void) | undefined;
  #finished: Promise<void> | undefined;
  #lastState = '';
  readonly #host: AdmissionHost;

  constructor(
    host: AdmissionHost,
    readonly message: MessageHandle,
    readonly admittedAtMs: number,
    readonly lane: string,
    readonly invocation: Invocation,
  ) {
    this.#host = host;
  }

  holdUntilFree(release: () => void): void {
    if (this.#freed) release();
    else this.#release = release;
  }

  /** Resolves once the machine is done and its slot is free. */
  get finished(): Promise<void> {
    if (this.#finished === undefined) {
      if (this.#freed) this.#finished = Promise.resolve();
      else this.#finished = new Promise<void>((resolve) => (this.#resolveFinished = resolve));
    }
    return this.#finished;
  }

  /** Frees the slot, once. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    const release = this.#release;
    this.#release = noop;
    release();
    this.#resolveFinished?.();
  }

  done(snapshot: SnapshotFrom<InvocationMachine>): void {
    this.#host.settle(this, snapshot, false);
  }

  error(_error: unknown, snapshot: MachineRun<InvocationMachine>['snapshot']): void {
    this.#host.settle(this, snapshot, true);
  }

  microstep(snapshot: SnapshotFrom<InvocationMachine>): void {
    const report = this.#host.transition;
    if (report === undefined) return;
    const attempt = snapshot.context.attempt;
    // The initial state resolves its eventless transition before the first microstep.
    if (this.#lastState === '') report(this.invocation, (this.#lastState = this.#host.initialState), attempt);
    const state = String(snapshot.value);
    if (state !== this.#lastState) report(this.invocation, (this.#lastState = state), attempt);
  }
}

function noop(): void {}

/** One in-flight invocation as {@link QueueSupervisor.inFlight} shows it: plain data, read when asked. */
export interface InFlightInvocation {
  readonly callId: string;
  readonly functionName: string;
  readonly namespace: string;
  readonly queue: string;
  /** The lane it was pulled from (QUEUE_LANE, "", for the queue's own consumer). */
  readonly lane: string;
  /** Its machine's state now (`invoking`, `retrying`, `callback`, `recordingAttempt`, …). */
  readonly state: string;
  /** The attempt this delivery runs (1 on the first). */
  readonly attempt: number;
  /** When it was delivered here, scheduler time (Unix ms with the default scheduler). */
  readonly startedAtMs: number;
}

/**
 * Supervises one queue: runs one invocation machine per message on a {@link LaneSupervisor}
 * (which pulls only as many messages as there are free slots, so a message never waits in a
 * client buffer while its ack deadline burns, and shares them between the queue's own consumer
 * and its functions' lanes), and keeps their ack deadlines alive with a single sweep.
 */
export class QueueSupervisor {
  readonly #opts: QueueSupervisorOptions;
  readonly #extender: AckExtender;
  readonly #scheduler: SchedulerLike;
  readonly #lanes: LaneSupervisor<Delivery>;
  /** Runs every invocation's machine (one XState machine each, no actor each: see machine.runner.ts). */
  readonly #machines: MachineRunner<InvocationMachine>;
  /** The one registry of in-flight invocations: cancel, drain, the ack-extend sweep and `running` read it. */
  readonly #inFlight = new Map<string, InFlight>();
  /**
   * Deliveries in order, not yet looked at by the `running` sweep; `#runningHead` is the first
   * unread. Call ids only, not the entries: a settled invocation's actor (its request and result
   * bodies) must not stay reachable from here until the sweep passes.
   */
  readonly #notYetRunning: string[] = [];
  /** Their delivery times, ms, index for index (two arrays: no object per delivery). */
  readonly #notYetRunningAt: number[] = [];
  #runningHead = 0;
  #runningTicker: Subscription | undefined;
  readonly #admissions: AdmissionHost;

  constructor(opts: QueueSupervisorOptions) {
    this.#opts = opts;
    this.#scheduler = opts.scheduler ?? asyncScheduler;
    // After each transition: the ack-extend sweep, if a timer could not run it (see AckExtender.sweepIfDue).
    this.#machines = new MachineRunner(opts.machine, () => this.#extender.sweepIfDue(this.#scheduler.now()));
    const { events } = opts;
    this.#admissions = {
      transition: events.transition === undefined ? undefined : (invocation, state, attempt) => events.transition?.(opts.queue, invocation, state, attempt),
      initialState: opts.machine.config.initial as string,
      settle: (admission, snapshot, crashed) => this.#settle(admission, snapshot, crashed),
    };
    this.#extender = new AckExtender(
      opts.ackExtendIntervalMs,
      this.#scheduler,
      (count) => opts.events.extended?.(opts.queue, count),
      () => this.#messages(),
    );
    this.#lanes = new LaneSupervisor<Delivery>({
      concurrency: opts.maxInflight,
      handle: (delivery, lane) => this.#admit(delivery, lane),
      waitingAfter: (delivery) => delivery.waiting,
      groupLimit: opts.groupLimit,
      events: {
        pullFailed: (_lane, error) => opts.events.pullFailed(opts.queue, error),
        // #admit settles its own failures; a throw here is a bug, reported where failures are logged.
        handleFailed: (_delivery, error) => opts.events.pullFailed(opts.queue, error),
      },
      pullRetryDelayMs: opts.pullRetryDelayMs,
      scheduler: this.#scheduler,
    });
    this.#lanes.addLane({ id: QUEUE_LANE, pull: opts.pull });
  }

  /** Adds a function's (or a concurrency key's) lane; `backlog` when it is known to have messages waiting. */
  addLane(lane: Lane<Delivery>, backlog = false): void {
    this.#lanes.addLane(lane, backlog);
  }

  /** Stops pulling a lane (its running invocations finish first). */
  removeLane(id: string): void {
    if (id !== QUEUE_LANE) this.#lanes.removeLane(id);
  }

  hasLane(id: string): boolean {
    return this.#lanes.has(id);
  }

  /** Tells whether a lane has messages waiting (from a discovery poll). */
  hint(id: string, backlog: boolean): void {
    this.#lanes.hint(id, backlog);
  }

  /** A lane's limit may have risen, or its tokens come back: schedule again. */
  poke(): void {
    this.#lanes.poke();
  }

  /** Running and requested invocations per lane. */
  lanes(): ReturnType<LaneSupervisor<Delivery>['lanes']> {
    return this.#lanes.lanes();
  }

  /** Invocations running now (between delivery and settlement). */
  get running(): number {
    return this.#lanes.running;
  }

  /** Observable count of running invocations. */
  get running$(): Observable<number> {
    return this.#lanes.running$;
  }

  /**
   * The invocations in flight now, read from the one registry when asked (an operator's view):
   * nothing is kept or computed for it while invocations run.
   */
  *inFlight(): Iterable<InFlightInvocation> {
    const queue = this.#opts.queue;
    for (const [callId, { run, message, admittedAtMs, lane, invocation }] of this.#inFlight) {
      const snapshot = run?.snapshot;
      yield {
        callId,
        functionName: invocation.functionName,
        namespace: invocation.namespace,
        queue,
        lane,
        // A machine that has not started yet (its first actions read the registry) is still queued.
        state: snapshot === undefined ? 'queued' : String(snapshot.value),
        attempt: snapshot?.context.attempt ?? Math.max(1, message.deliveryCount),
        startedAtMs: admittedAtMs,
      };
    }
  }

  /** Messages of the invocations in flight, for the ack-extend sweep. */
  *#messages(): Iterable<MessageHandle> {
    for (const entry of this.#inFlight.values()) yield entry.message;
  }

  start(): void {
    if (this.#runningTicker) return;
    this.#extender.start();
    const runningAfterMs = this.#opts.runningAfterMs ?? 250;
    this.#runningTicker = interval(runningAfterMs, this.#scheduler).subscribe(() => this.#tellRunning(runningAfterMs));
    this.#lanes.start();
  }

  /**
   * Graceful stop: pull nothing more, let running invocations finish for up to `graceMs`, then
   * release those still calling their function (nak with no delay) so another replica takes them
   * at once. Invocations already past their function call are left to finish: releasing them
   * would run the function a second time.
   */
  async drain(graceMs: number): Promise<DrainResult> {
    await this.#lanes.drain(graceMs);
    let released = 0;
    for (const { run } of this.#inFlight.values()) {
      if (!run.snapshot?.matches('invoking')) continue;
      run.send({ type: 'release' });
      released += 1;
    }
    this.#extender.stop();
    this.#runningTicker?.unsubscribe();
    return { released, unsettled: this.#inFlight.size };
  }
  /**
   * Cancels a running invocation of this queue (its HTTP call is aborted). Queued ones are skipped
   * on delivery through `settingsFor`. Returns whether an invocation was running here.
   */
  cancel(callId: string): boolean {
    const entry = this.#inFlight.get(callId);
    entry?.run.send({ type: 'cancel' });
    return entry !== undefined;
  }

  /**
   * Whether this queue runs `invocation` now (the same call id and enqueue time), for another
   * worker that got a delivery of it (src/worker/holders.ts): if so, its message's ack deadline is
   * extended at once, since JetStream has just given up on it once. An invocation whose retry or
   * throttle is being handed back is not held: that delivery is its next attempt.
   */
  holds(callId: string, enqueuedAtMs: number): boolean {
    const entry = this.#inFlight.get(callId);
    // A machine that is done has left the registry already (#settle).
    if (entry === undefined || entry.invocation.enqueuedAtMs !== enqueuedAtMs || GIVEN_BACK.has(String(entry.run.snapshot?.value))) return false;
    entry.message.working();
    return true;
  }

  /**
   * Tells every invocation delivered at least `afterMs` ago that is still in flight that it is
   * `running`. Reads only the invocations delivered since the last sweep (in delivery order), so
   * a sweep with 10,000 long jobs in flight costs nothing once they have all been told.
   */
  #tellRunning(afterMs: number): void {
    const callIds = this.#notYetRunning;
    const times = this.#notYetRunningAt;
    const cutoff = this.#scheduler.now() - afterMs;
    while (this.#runningHead < callIds.length && times[this.#runningHead]! <= cutoff) {
      const callId = callIds[this.#runningHead]!;
      const admittedAtMs = times[this.#runningHead]!;
      this.#runningHead += 1;
      const entry = this.#inFlight.get(callId);
      // Gone: settled. Another admission time: a later delivery of the same call id.
      if (entry !== undefined && entry.admittedAtMs === admittedAtMs) entry.run.send({ type: 'running' });
    }
    // Drop what has been read once it is most of the array.
    if (this.#runningHead > 1024 && this.#runningHead * 2 > callIds.length) {
      callIds.splice(0, this.#runningHead);
      times.splice(0, this.#runningHead);
      this.#runningHead = 0;
    }
  }

  /** An admitted invocation's machine is done, or crashed: the registry forgets it, its slot is freed, the settlement is reported. */
  #settle(admission: Admission, snapshot: MachineRun<InvocationMachine>['snapshot'], crashed: boolean): void {
    const { invocation, message, lane } = admission;
    this.#inFlight.delete(invocation.callId);
    // Freed before the report, at once: anything the report wakes reads `running` without this invocation (the next pull is scheduled after this turn).
    admission.free();
    const context = snapshot?.context;
    this.#opts.events.settled({
      queue: this.#opts.queue,
      lane,
      invocation,
      attempt: context?.attempt ?? Math.max(1, message.deliveryCount),
      // A crashed machine leaves its message unsettled: JetStream redelivers it after ack_wait.
      settlement: crashed ? 'crashed' : (snapshot!.value as InvocationSettlement),
      outcome: context?.outcome,
      deadLetter: context?.deadLetter,
      callbackError: context?.callbackError,
      settleError: context?.settleError,
      recordError: context?.recordError,
      resultStorage: context?.resultStorage,
      policyWarnings: context?.policyWarnings ?? [],
      throttledDeliveries: context?.throttledDeliveries,
      ledgerError: context?.ledgerError,
      heldBy: context?.heldBy,
    });
  }

  /**
   * The lane supervisor's handler: starts one machine and returns its admission, which holds the
   * slot until the machine is done (or a promise that does, for a delivery that waits for the
   * attempt before it). Returns undefined (no slot taken) for what it settles at once: a poison
   * message and a duplicate call id.
   */
  #admit(delivery: Delivery, lane: string): PromiseLike<void> | Admission | undefined {
    const { message, decoded } = delivery;
    if (!decoded.ok) {
      // A message that cannot be decoded can never succeed: dead-letter it instead of redelivering forever.
      this.#opts.events.poison(this.#opts.queue, decoded.reasons);
      this.#opts.handlePoison(message, decoded.reasons, decoded.raw).catch((error: unknown) => {
        this.#opts.events.pullFailed(this.#opts.queue, error);
        message.nak(this.#opts.pullRetryDelayMs ?? 1000);
      });
      return undefined;
    }
    const { invocation } = decoded;
    const running = this.#inFlight.get(invocation.callId);
    if (running) {
      // A retry's redelivery overtook the confirmation of its nak (a short back-off): it is the next
      // attempt, run once the machine before it is done. A nak here would spend a delivery, and so
      // an attempt, on nothing.
      if (GIVEN_BACK.has(String(running.run.snapshot?.value))) return running.finished.then(() => this.#admitAfter(delivery, lane));
      // The same call id is already running here (ack_wait ran out, or a redelivery overtook a slow
      // ack): let the running one settle it. JetStream keeps one ack deadline per stream message,
      // whichever delivery's reply moves it: `working()` here pushes it a whole ack_wait away, and
      // the running attempt's ack or nak settles the message as before. A nak of this delivery
      // would pull the deadline in to its delay instead, and the message would come back (maybe to
      // another worker, which would call the function again) unless a sweep got there first.
      // JetStream has counted this delivery; it started no attempt, and the next one reads only
      // the attempts recorded (actors/attempt.policy.ts).
      this.#opts.events.duplicate?.(this.#opts.queue, invocation);
      message.working();
      return undefined;
    }
    const admission = new Admission(this.#admissions, message, this.#scheduler.now(), lane, invocation);
    // Registered before the machine starts: its first actions may already read the registry.
    this.#inFlight.set(invocation.callId, admission);
    this.#notYetRunning.push(invocation.callId);
    this.#notYetRunningAt.push(admission.admittedAtMs);
    // The spread first: V8 then copies the settings' shape at once, where a spread after other
    // fields copies property by property into a slower object (the machine's context factory,
    // which read it with a spread of its own then, was ~2.4 % of a drain's CPU, 0.8 % with this order).
    admission.run = this.#machines.start({ ...this.#opts.settingsFor(invocation), message, invocation }, admission);
    const first = admission.run.snapshot;
    this.#opts.events.started?.(this.#opts.queue, invocation, first?.context.attempt ?? Math.max(1, message.deliveryCount), String(first?.value ?? 'crashed'));
    return admission;
  }

  /** Admits a delivery that waited for the attempt before it: the slot it holds is a promise's. */
  #admitAfter(delivery: Delivery, lane: string): PromiseLike<void> | undefined {
    const held = this.#admit(delivery, lane);
    return held instanceof Admission ? held.finished : held;
  }
}
