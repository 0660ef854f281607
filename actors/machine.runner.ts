import type { ActorScope, AnyStateMachine, EventFromLogic, ExecutableActionObject, InputFrom, SnapshotFrom } from 'xstate';

/** The scope a machine's transitions see; its system is the xstate default (any system). */
type Scope<M extends AnyStateMachine> = ActorScope<SnapshotFrom<M>, EventFromLogic<M>>;

/** What a running machine tells its owner. */
export interface RunObserver<M extends AnyStateMachine> {
  /** The machine reached a final state. */
  done(snapshot: SnapshotFrom<M>): void;
  /** A guard, an assignment or an action threw; the machine stops where it was. */
  error(error: unknown, snapshot: SnapshotFrom<M> | undefined): void;
  /** Every microstep's snapshot, eventless transitions included (for debug logs); costly, optional. */
  microstep?(snapshot: SnapshotFrom<M>): void;
}

/** The handle an action gets as `self`: events it sends come back to its own machine. */
export interface MachineSelf<M extends AnyStateMachine> {
  send(event: EventFromLogic<M>): void;
}

/**
 * Runs many instances of one XState machine without an actor each. Every instance is an XState
 * machine all the same: its snapshot is XState's, each event goes through XState's own
 * `machine.transition`, and the actions XState resolves are executed after the transition, as
 * an actor executes them. What is left out is what this worker never uses and pays for per
 * actor: a system, a mailbox, observers, a clock and an inspection bus per instance (about
 * 20 µs of CPU and 3.7 KiB of heap per in-flight invocation, measured in `npm run bench`
 * pieces). One actor scope is shared: `self` is set to the instance whose event is being
 * transitioned, so actions send their results back to their own instance.
 *
 * Supported: guards, `assign`, custom actions, eventless (`always`) transitions, final states.
 * Not supported (refused when used): invoked or spawned actors, delayed transitions and
 * scheduled events, `emit` — the invocation machine starts its effects from actions instead.
 */
export class MachineRunner<M extends AnyStateMachine> {
  readonly #machine: M;
  readonly #scope: Scope<M>;
  /** Actions resolved by the transition being computed, executed once it is done. */
  #actions: ExecutableActionObject[] = [];
  #deferred: Array<() => void> = [];
  /** The run whose transition is being computed: inspection events are its microsteps. */
  #current: MachineRun<M> | undefined;

  /** Called after each event's transition and actions (the supervisor's hook; see `AckExtender.sweepIfDue`). */
  readonly #afterStep: (() => void) | undefined;

  constructor(machine: M, afterStep?: () => void) {
    this.#machine = machine;
    this.#afterStep = afterStep;
    const unsupported = (what: string) => () => {
      throw new Error(`MachineRunner: ${what} is not supported; start effects from actions`);
    };
    const system = {
      _sendInspectionEvent: (event: { type: string; snapshot?: unknown }) => {
        if (event.type === '@xstate.microstep') this.#current?.microstep(event.snapshot as SnapshotFrom<M>);
      },
      scheduler: { schedule: unsupported('a delayed event'), cancel: () => undefined, cancelAll: () => undefined },
      _relay: unsupported('sending to another actor'),
      _bookId: unsupported('spawning an actor'),
      _register: unsupported('spawning an actor'),
      _set: unsupported('a system id'),
      _snapshot: { _scheduledEvents: {} },
    };
    this.#scope = {
      self: undefined as never,
      id: String(machine.id),
      sessionId: '',
      logger: () => undefined,
      defer: (fn) => this.#deferred.push(fn),
      emit: unsupported('emit'),
      system: system as unknown as Scope<M>['system'],
      stopChild: () => undefined,
      actionExecutor: (action) => this.#actions.push(action),
    };
  }

  /** Starts one instance: its initial transition runs now, its entry actions right after. */
  start(input: InputFrom<M>, observer: RunObserver<M>): MachineRun<M> {
    const run = new MachineRun(this, observer);
    run.begin(input);
    return run;
  }

  /** Computes one transition of `run` (the initial one when `event` is undefined) and executes its actions. */
  step(run: MachineRun<M>, snapshot: SnapshotFrom<M> | undefined, event: EventFromLogic<M> | undefined, input?: InputFrom<M>): SnapshotFrom<M> {
    const outer = { actions: this.#actions, deferred: this.#deferred, current: this.#current };
    this.#actions = [];
    this.#deferred = [];
    this.#current = run;
    this.#scope.self = run as never;
    try {
      const next =
        snapshot === undefined
          ? (this.#machine.getInitialSnapshot(this.#scope as never, input) as SnapshotFrom<M>)
          : (this.#machine.transition(snapshot, event, this.#scope as never) as SnapshotFrom<M>);
      run.snapshot = next;
      for (const action of this.#actions) action.exec?.(action.info, action.params);
      // Built-in actions defer their work (XState's actors run it after the snapshot update too).
      for (let i = 0; i < this.#deferred.length; i++) this.#deferred[i]!();
      this.#afterStep?.();
      return next;
    } finally {
      ({ actions: this.#actions, deferred: this.#deferred, current: this.#current } = outer);
      if (this.#current) this.#scope.self = this.#current as never;
    }
  }
}

/** One running instance of a machine: its snapshot and the way to send it events. */
export class MachineRun<M extends AnyStateMachine> implements MachineSelf<M> {
  snapshot: SnapshotFrom<M> | undefined;
  readonly #runner: MachineRunner<M>;
  readonly #observer: RunObserver<M>;
  /** Events sent while one is being handled (by an action of this machine), handled in order after it. */
  #queue: Array<EventFromLogic<M>> | undefined;
  #busy = false;
  #over = false;

  constructor(runner: MachineRunner<M>, observer: RunObserver<M>) {
    this.#runner = runner;
    this.#observer = observer;
  }

  /** @internal */
  begin(input: InputFrom<M>): void {
    this.#handle(undefined, input);
  }

  /** @internal */
  microstep(snapshot: SnapshotFrom<M>): void {
    this.#observer.microstep?.(snapshot);
  }

  /** Sends an event; ignored once the machine is done (as an actor ignores it once stopped). */
  send(event: EventFromLogic<M>): void {
    if (this.#over) return;
    if (this.#busy) {
      (this.#queue ??= []).push(event);
      return;
    }
    this.#handle(event, undefined);
  }

  #handle(event: EventFromLogic<M> | undefined, input: InputFrom<M> | undefined): void {
    this.#busy = true;
    try {
      let next: EventFromLogic<M> | undefined = event;
      let first = true;
      while (first || next !== undefined) {
        const snapshot: { status: string; error?: unknown } = this.#runner.step(this, first && event === undefined ? undefined : this.snapshot, next, input);
        first = false;
        if (snapshot.status !== 'active') {
          this.#over = true;
          this.#queue = undefined;
          if (snapshot.status === 'done') this.#observer.done(this.snapshot!);
          else this.#observer.error(snapshot.error, this.snapshot);
          return;
        }
        next = this.#queue?.shift();
      }
    } catch (error) {
      this.#over = true;
      this.#queue = undefined;
      this.#observer.error(error, this.snapshot);
    } finally {
      this.#busy = false;
    }
  }
}
