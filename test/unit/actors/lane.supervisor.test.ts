import { asyncScheduler, Observable, type SchedulerAction, type SchedulerLike, type Subscriber, type Subscription } from 'rxjs';
import t from 'tap';
import { LaneSupervisor, type Lane } from '../../../actors/lane.supervisor.js';
import { deferred } from '../../helpers/deferred.js';

/**
 * The lane supervisor against simulated pull consumers (each a FIFO of items that serves pull
 * requests in order, delivering at once what it has and holding the rest of a request open, as
 * JetStream does): fairness between a burst and a trickle, group limits, idle long polls given up
 * for a lane with work, rate tokens, and removal.
 */

interface Item {
  readonly lane: string;
  readonly n: number;
  readonly waiting: number;
}

class SimulatedConsumer {
  readonly #items: number[] = [];
  readonly #requests: Array<{ max: number; delivered: number; subscriber: Subscriber<Item> }> = [];
  /** Every pull request's size, in order. */
  readonly pulls: number[] = [];
  #next = 0;

  constructor(readonly lane: string) {}

  get openRequests(): number {
    return this.#requests.length;
  }

  add(count: number): void {
    for (let i = 0; i < count; i++) this.#items.push(this.#next++);
    this.#pump();
  }

  readonly pull = (max: number): Observable<Item> =>
    new Observable<Item>((subscriber) => {
      const request = { max, delivered: 0, subscriber };
      this.pulls.push(max);
      this.#requests.push(request);
      this.#pump();
      return () => {
        const at = this.#requests.indexOf(request);
        if (at >= 0) this.#requests.splice(at, 1);
      };
    });

  /** Ends every open request unfilled (a pull request's `expires`). */
  expire(): void {
    for (const request of this.#requests.splice(0)) request.subscriber.complete();
  }

  #pump(): void {
    while (this.#requests.length > 0 && this.#items.length > 0) {
      const request = this.#requests[0]!;
      const n = this.#items.shift()!;
      request.delivered += 1;
      if (request.delivered === request.max) this.#requests.shift();
      request.subscriber.next({ lane: this.lane, n, waiting: this.#items.length });
      if (request.delivered === request.max) request.subscriber.complete();
    }
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function harness(concurrency: number, groupLimit?: (group: string) => number) {
  const done: Item[] = [];
  const running = new Map<string, number>();
  let total = 0;
  let highWater = 0;
  const groupHighWater = new Map<string, number>();
  const groupOf = new Map<string, string>();
  const supervisor = new LaneSupervisor<Item>({
    concurrency,
    groupLimit,
    waitingAfter: (item) => item.waiting,
    handle: (item) => {
      total += 1;
      highWater = Math.max(highWater, total);
      const group = groupOf.get(item.lane) ?? item.lane;
      running.set(group, (running.get(group) ?? 0) + 1);
      groupHighWater.set(group, Math.max(groupHighWater.get(group) ?? 0, running.get(group)!));
      return tick().then(() => {
        total -= 1;
        running.set(group, running.get(group)! - 1);
        done.push(item);
      });
    },
  });
  const lane = (id: string, group?: string, extra: Partial<Lane<Item>> = {}): SimulatedConsumer => {
    const consumer = new SimulatedConsumer(id);
    if (group !== undefined) groupOf.set(id, group);
    supervisor.addLane({ id, group, pull: consumer.pull, ...extra });
    return consumer;
  };
  const until = async (what: string, condition: () => boolean, maxTicks = 100_000): Promise<void> => {
    for (let i = 0; i < maxTicks; i++) {
      if (condition()) return;
      await tick();
    }
    throw new Error(`never happened: ${what}`);
  };
  return {
    supervisor,
    lane,
    done,
    until,
    get highWater() {
      return highWater;
    },
    groupHighWater,
  };
}

t.test('a burst of one lane does not starve another: 50 of b finish before 10 % of 5,000 of a', async (t) => {
  const h = harness(10);
  const a = h.lane('a');
  const b = h.lane('b');
  h.supervisor.start();
  a.add(5000);
  await h.until('a runs', () => h.done.length >= 20);
  b.add(50);
  // What a discovery poll would say.
  h.supervisor.hint('b', true);
  await h.until('b done', () => h.done.filter((i) => i.lane === 'b').length === 50);
  const aDone = h.done.filter((i) => i.lane === 'a').length;
  t.ok(aDone < 500, `a finished ${aDone} (< 500) by the time b's 50 were done`);
  t.ok(h.highWater <= 10, `never more than 10 running (saw ${h.highWater})`);
  await h.supervisor.drain(Infinity);
});

t.test('a group limit holds over the group’s lanes, and other lanes use the rest', async (t) => {
  const h = harness(10, (group) => (group === 'f' ? 3 : Infinity));
  const f1 = h.lane('f', 'f');
  const f2 = h.lane('f/tenant-1', 'f');
  const g = h.lane('g');
  h.supervisor.start();
  f1.add(40);
  f2.add(40);
  g.add(40);
  await h.until('all done', () => h.done.length === 120);
  t.equal(h.groupHighWater.get('f'), 3, 'f ran at most 3 at once over its two lanes');
  t.ok(h.groupHighWater.get('g')! > 3, `g was not held to f's limit (ran ${h.groupHighWater.get('g')} at once)`);
  t.ok(h.highWater <= 10);
  await h.supervisor.drain(Infinity);
});

t.test('a quiet lane long-polls with the free slots, and gives them up for a lane with a backlog', async (t) => {
  const h = harness(8);
  const quiet = h.lane('quiet');
  h.supervisor.start();
  await h.until('quiet polls', () => quiet.openRequests === 1);
  t.same(quiet.pulls, [8], 'with nothing known to wait anywhere, every slot waits on the quiet lane');
  const busy = h.lane('busy');
  busy.add(20);
  h.supervisor.hint('busy', true);
  await h.until('busy done', () => h.done.filter((i) => i.lane === 'busy').length === 20);
  t.ok(busy.pulls.length > 0, 'the busy lane was pulled while the quiet one held every slot');
  quiet.add(1);
  await h.until('quiet item done', () => h.done.some((i) => i.lane === 'quiet'));
  t.ok(h.highWater <= 8);
  await h.supervisor.drain(Infinity);
});

t.test("a drain cancels the timer of a lane's pause (a rate limit's may be an hour): a stopped supervisor holds no timer", async (t) => {
  const timers: Subscription[] = [];
  // The default scheduler, recording what it is asked to schedule.
  const scheduler: SchedulerLike = {
    now: () => asyncScheduler.now(),
    schedule: (work: (this: SchedulerAction<unknown>, state?: unknown) => void, delay?: number, state?: unknown) => {
      const scheduled = asyncScheduler.schedule(work, delay, state);
      timers.push(scheduled);
      return scheduled;
    },
  };
  const supervisor = new LaneSupervisor<Item>({ concurrency: 4, scheduler, waitingAfter: (item) => item.waiting, handle: () => Promise.resolve() });
  const asked = deferred<void>();
  const consumer = new SimulatedConsumer('limited');
  supervisor.addLane({
    id: 'limited',
    pull: consumer.pull,
    acquire: () => {
      asked.resolve();
      return Promise.resolve({ granted: 0, retryInMs: 3_600_000 });
    },
  });
  supervisor.start();
  consumer.add(1);
  supervisor.hint('limited', true);
  await asked.promise;
  await tick();
  t.ok(timers.length > 0 && timers.some((timer) => !timer.closed), "the lane's pause waits on a timer");
  await supervisor.drain(Infinity);
  t.same(
    timers.filter((timer) => !timer.closed),
    [],
    'none left after the drain',
  );
});

t.test('a rate-limited lane pulls only what its tokens allow', async (t) => {
  const h = harness(10);
  const granted: number[] = [];
  let tokens = 4;
  const limited = h.lane('limited', undefined, {
    acquire: (n) => {
      const g = Math.min(n, tokens);
      tokens -= g;
      granted.push(g);
      return Promise.resolve({ granted: g, retryInMs: 5 });
    },
  });
  h.supervisor.start();
  limited.add(10);
  h.supervisor.hint('limited', true);
  await h.until('4 ran', () => h.done.length === 4);
  t.same(
    limited.pulls.reduce((s, n) => s + n, 0),
    4,
    'pulled exactly the 4 granted tokens',
  );
  tokens = 6;
  await h.until('the rest ran after the pause', () => h.done.length === 10);
  t.equal(
    granted.reduce((s, n) => s + n, 0),
    10,
    'every item ran on a token',
  );
  t.equal(
    limited.pulls.reduce((s, n) => s + n, 0),
    10,
    'and no more were pulled than granted',
  );
  await h.supervisor.drain(Infinity);
});

t.test('a removed lane stops pulling once its running items settle', async (t) => {
  const h = harness(4);
  const a = h.lane('a');
  h.supervisor.start();
  a.add(2);
  await h.until('a polled and ran', () => h.done.length === 2 && a.openRequests > 0);
  h.supervisor.removeLane('a');
  t.equal(a.openRequests, 0, 'its long poll ended');
  t.equal(h.supervisor.has('a'), false);
  a.add(3);
  const b = h.lane('b');
  b.add(1);
  await h.until('b ran', () => h.done.some((i) => i.lane === 'b'));
  t.equal(h.done.filter((i) => i.lane === 'a').length, 2, 'nothing more taken from the removed lane');
  await h.supervisor.drain(Infinity);
});

t.test('an expired pull on a lane with nothing waiting is opened again as a long poll', async (t) => {
  const h = harness(4);
  const a = h.lane('a');
  h.supervisor.start();
  await h.until('polled', () => a.openRequests === 1);
  a.expire();
  await h.until('polled again', () => a.openRequests === 1);
  t.same(a.pulls, [4, 4]);
  await h.supervisor.drain(Infinity);
});

t.test('a lane whose backlog ran out gives the slots its open pull still holds to a lane with work', async (t) => {
  const h = harness(4);
  const a = h.lane('a');
  h.supervisor.start();
  a.add(2);
  await h.until('a ran its two', () => h.done.length === 2);
  t.ok(a.openRequests > 0, 'a still holds a pull for messages not yet published');
  const b = h.lane('b');
  b.add(12);
  h.supervisor.hint('b', true);
  await h.until('b done', () => h.done.filter((i) => i.lane === 'b').length === 12);
  t.equal(h.groupHighWater.get('b'), 4, 'b ran 4 at once: every slot, those a held included');
  await h.supervisor.drain(Infinity);
});

t.test('a handler that holds its slot with a SlotHold keeps it until it calls the release it was given', async (t) => {
  const releases: Array<() => void> = [];
  const supervisor = new LaneSupervisor<Item>({
    concurrency: 2,
    handle: () => ({ holdUntilFree: (release: () => void) => void releases.push(release) }),
  });
  const a = new SimulatedConsumer('a');
  supervisor.addLane({ id: 'a', pull: a.pull });
  supervisor.start();
  a.add(5);
  for (let i = 0; i < 100 && releases.length < 2; i++) await tick();
  t.equal(releases.length, 2, 'two items hold the two slots');
  t.equal(supervisor.running, 2);
  for (let i = 0; i < 10; i++) await tick();
  t.equal(releases.length, 2, 'nothing more is taken while both slots are held');
  t.equal(releases[0], releases[1], "the release is the lane's one function, not one made per item");
  releases[0]!();
  for (let i = 0; i < 100 && releases.length < 3; i++) await tick();
  t.equal(releases.length, 3, 'a released slot is pulled again');
  t.equal(supervisor.running, 2);
  releases[1]!();
  releases[2]!();
  for (let i = 0; i < 100 && releases.length < 5; i++) await tick();
  t.equal(releases.length, 5, 'the rest of the items ran');
  for (const release of releases.slice(3)) release();
  const drained = await supervisor.drain(Infinity);
  t.equal(drained.running, 0, 'every slot was given back');
});

t.test("a lane's own limit bounds what it runs and requests; the other slots go to other lanes", async (t) => {
  const h = harness(4);
  const keyed = h.lane('f/tenant-a', 'f', { limit: 1 });
  const other = h.lane('f/tenant-b', 'f');
  h.supervisor.start();
  keyed.add(6);
  h.supervisor.hint('f/tenant-a', true);
  await h.until('tenant-a runs', () => h.done.some((i) => i.lane === 'f/tenant-a'));
  t.ok(
    keyed.pulls.every((n) => n === 1),
    `every pull of the limited lane asked for 1 (${keyed.pulls.join(', ')})`,
  );
  other.add(12);
  h.supervisor.hint('f/tenant-b', true);
  await h.until('all done', () => h.done.length === 18);
  t.ok(
    keyed.pulls.every((n) => n === 1),
    'still one at a time',
  );
  t.ok(h.groupHighWater.get('f')! > 1, 'the other lane used the other slots');
  await h.supervisor.drain(Infinity);
});

t.test('a lane hinted to have nothing deliverable gives the slots its open pull holds to a lane with work', async (t) => {
  const h = harness(2);
  const blocked = h.lane('blocked');
  h.supervisor.start();
  // Taken to have a backlog (a discovery poll counted a retry waiting out its back-off): its pull holds every slot.
  h.supervisor.hint('blocked', true);
  await h.until('blocked pulls', () => blocked.openRequests === 1);
  t.same(blocked.pulls, [2]);
  const other = h.lane('other');
  other.add(4);
  h.supervisor.hint('other', true);
  for (let i = 0; i < 20; i++) await tick();
  t.equal(h.done.length, 0, 'while the blocked lane is taken to have a backlog, its pull keeps the slots');
  // The next poll reads its consumer: nothing JetStream would deliver now.
  h.supervisor.hint('blocked', false);
  await h.until('other done', () => h.done.filter((i) => i.lane === 'other').length === 4);
  blocked.add(1);
  await h.until('the blocked lane is served again once it can be', () => h.done.some((i) => i.lane === 'blocked'));
  await h.supervisor.drain(Infinity);
});

t.test('a pull that becomes a long poll after a round left a lane with work short of slots is taken back at once', async (t) => {
  // Items hold their slots until the test lets them go, as invocations of long functions do.
  const releases = new Map<string, Array<() => void>>();
  const supervisor = new LaneSupervisor<Item>({
    concurrency: 8,
    waitingAfter: (item) => item.waiting,
    handle: (item) => ({ holdUntilFree: (release: () => void) => void releases.set(item.lane, [...(releases.get(item.lane) ?? []), release]) }),
  });
  const running = (lane: string): number => releases.get(lane)?.length ?? 0;
  const ticks = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await tick();
  };
  // A lane found with a backlog (a discovery poll counted its invocation before JetStream delivers it): its pull takes every slot.
  const other = new SimulatedConsumer('other');
  supervisor.addLane({ id: 'other', pull: other.pull }, true);
  supervisor.start();
  await ticks(10);
  t.same(other.pulls, [8], 'the lane with a backlog asks for every slot');
  // A second lane with work, found before the first one's pull has delivered: no slot is free and
  // no pull is a long poll yet, so this round gives it nothing.
  const work = new SimulatedConsumer('work');
  work.add(3);
  supervisor.addLane({ id: 'work', pull: work.pull }, true);
  await ticks(10);
  t.same(work.pulls, [], 'no slot for it in that round');
  // The first lane's only invocation arrives: nothing waits behind it, its pull is now a long poll
  // holding 7 slots, and it runs (for an hour, say).
  other.add(1);
  for (let i = 0; i < 1000 && running('work') < 3; i++) await tick();
  t.equal(running('other'), 1, "the first lane's invocation still runs");
  t.equal(running('work'), 3, "the second lane's three run beside it, in the slots the long poll held");
  t.ok(supervisor.running + supervisor.requested <= 8, 'never more than 8 slots taken');
  for (const release of [...releases.values()].flat()) release();
  await supervisor.drain(Infinity);
});
