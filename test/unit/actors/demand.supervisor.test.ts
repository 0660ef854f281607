import { Subject, VirtualTimeScheduler, type Observable, type SchedulerLike } from 'rxjs';
import t, { type Test } from 'tap';
import { DemandSupervisor, type DemandDrainResult } from '../../../actors/demand.supervisor.js';
import { deferred, type Deferred } from '../../helpers/deferred.js';
import { FakePull } from '../../helpers/fake-pull.js';
import { Inbox, settleMicrotasks } from '../../helpers/inbox.js';

/**
 * The generic demand-driven supervisor against a fake pull port: demand bounds what is requested
 * plus what is running, freed slots are pulled again, drain stops pulling and waits, and a failed
 * pull is retried after its delay on virtual time.
 */

interface Handling {
  readonly item: string;
  readonly done: Deferred<void>;
}

interface Options {
  concurrency?: number;
  pullRetryDelayMs?: number;
  scheduler?: SchedulerLike;
  /** Items this handler finishes synchronously (returns undefined: no slot). */
  synchronous?: (item: string) => boolean;
}

function startSupervisor(t: Test, opts: Options = {}) {
  const concurrency = opts.concurrency ?? 4;
  const source = new FakePull<string>(concurrency);
  const handling = new Inbox<Handling>('a handle call');
  const pullFailed = new Inbox<unknown>('a pullFailed event');
  const handleFailed = new Inbox<{ item: string; error: unknown }>('a handleFailed event');
  const supervisor = new DemandSupervisor<string>({
    concurrency,
    pull: source.pull,
    handle: (item) => {
      if (opts.synchronous?.(item)) return undefined;
      const done = deferred<void>();
      handling.push({ item, done });
      return done.promise;
    },
    pullRetryDelayMs: opts.pullRetryDelayMs,
    scheduler: opts.scheduler,
    events: {
      pullFailed: (error) => pullFailed.push(error),
      handleFailed: (item, error) => handleFailed.push({ item, error }),
    },
  });
  source.watch(t, supervisor, opts.scheduler);
  supervisor.start();
  const take = async (n: number): Promise<Handling[]> => {
    const taken: Handling[] = [];
    for (let i = 0; i < n; i++) taken.push(await handling.next());
    return taken;
  };
  return { supervisor, source, handling, pullFailed, handleFailed, take };
}

t.test('the first pull asks for every slot, once', async (t) => {
  const s = startSupervisor(t, { concurrency: 4 });
  const first = await s.source.requested.next();
  t.equal(first.max, 4);
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'one request, not one per slot');
  t.equal(s.supervisor.requested, 4);
});

t.test('requested + running never exceeds concurrency; freed slots are pulled again', async (t) => {
  const s = startSupervisor(t, { concurrency: 4 });
  const r1 = await s.source.requested.next();
  r1.deliver('a', 'b', 'c', 'd');
  t.equal(r1.open, false, 'a request filled to max is closed');
  const [a, b, c, d] = await s.take(4);
  t.equal(s.supervisor.running, 4);
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'no pull while every slot is busy');

  a!.done.resolve();
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 1, 'one slot freed, one item asked for');
  r2.deliver('e');
  const [e] = await s.take(1);

  b!.done.resolve();
  const r3 = await s.source.requested.next();
  t.equal(r3.max, 1);
  r3.complete(); // expired empty: the slot is still free, so ask again
  const r4 = await s.source.requested.next();
  t.equal(r4.max, 1);

  c!.done.resolve();
  d!.done.resolve();
  e!.done.resolve();
  // r4 (1) is still open: the three freed slots reach the batch threshold of 1 together.
  const more = [await s.source.requested.next()];
  while (s.supervisor.running + s.source.outstanding() < 4) more.push(await s.source.requested.next());
  t.equal(
    more.reduce((n, r) => n + r.max, 0),
    3,
    'three slots freed, three items asked for',
  );
  await settleMicrotasks();
  t.equal(s.source.requested.backlog, 0, 'nothing more was asked for');
  t.same(s.source.violations, [], 'requested + running stayed within concurrency');
  t.equal(s.source.highWater, 4);
});

t.test('with a request still open, a new pull waits for ceil(concurrency/4) free slots', async (t) => {
  const s = startSupervisor(t, { concurrency: 8 });
  const r1 = await s.source.requested.next();
  t.equal(r1.max, 8);
  r1.deliver('1', '2', '3', '4', '5', '6');
  t.equal(r1.open, true, 'two items still outstanding on the open request');
  const running = await s.take(6);

  running[0]!.done.resolve();
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'one free slot is below the batch threshold of 2');

  running[1]!.done.resolve();
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 2, 'two free slots reach the threshold');
  t.same(s.source.violations, []);
});

t.test('with no request open, a single free slot is pulled at once', async (t) => {
  const s = startSupervisor(t, { concurrency: 8 });
  const r1 = await s.source.requested.next();
  r1.deliver(...Array.from({ length: 8 }, (_, i) => `i${i}`));
  const [first] = await s.take(8);
  first!.done.resolve();
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 1, 'below the batch threshold, but nothing else would ever free it');
  t.same(s.source.violations, []);
});

t.test('an item handled synchronously takes no slot', async (t) => {
  const s = startSupervisor(t, { concurrency: 4, synchronous: (item) => item.startsWith('nak') });
  const r1 = await s.source.requested.next();
  r1.deliver('nak-1', 'run-1');
  await s.take(1);
  t.equal(s.supervisor.running, 1, 'only the asynchronous item runs');
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 1, "the synchronous item's slot was pulled again (batch threshold 1)");
  t.same(s.source.violations, []);
});

t.test('a handler that rejects is reported and frees its slot', async (t) => {
  const s = startSupervisor(t, { concurrency: 2 });
  const r1 = await s.source.requested.next();
  r1.deliver('x', 'y');
  const [x] = await s.take(2);
  const error = new Error('bug');
  x!.done.reject(error);
  t.same(await s.handleFailed.next(), { item: 'x', error });
  const r2 = await s.source.requested.next();
  t.equal(r2.max, 1);
  t.equal(s.supervisor.running, 1);
});

t.test('a failed pull is reported and retried after pullRetryDelayMs, for the free slots only', async (t) => {
  const retryDelayMs = 1000;
  const clock = new VirtualTimeScheduler();
  const s = startSupervisor(t, { concurrency: 4, pullRetryDelayMs: retryDelayMs, scheduler: clock });
  const r1 = await s.source.requested.next();
  r1.deliver('a');
  await s.take(1);
  const error = new Error('connection lost');
  r1.error(error);
  t.equal(await s.pullFailed.next(), error);

  clock.maxFrames = retryDelayMs - 1;
  clock.flush();
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'no new pull before the retry delay has passed');

  clock.maxFrames = retryDelayMs;
  clock.flush();
  const r2 = await s.source.requested.next();
  t.equal(s.source.requests.length, 2, 'one new request once it has');
  t.equal(r2.max, 3, 'asks again for the free slots only');
  t.same(s.source.violations, []);
});

t.test('drain with nothing running resolves at once and ends the open pull', async (t) => {
  const s = startSupervisor(t, { concurrency: 4 });
  const r1 = await s.source.requested.next();
  t.same(await s.supervisor.drain(1000), { running: 0 });
  t.equal(r1.open, false, 'the pull request was unsubscribed');
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'no pull after drain');
});

t.test('drain waits for the items being handled, then never pulls again', async (t) => {
  const s = startSupervisor(t, { concurrency: 4 });
  const r1 = await s.source.requested.next();
  r1.deliver('a', 'b');
  const [a, b] = await s.take(2);

  let drained: DemandDrainResult | undefined;
  const draining = s.supervisor.drain(Infinity).then((result) => (drained = result));
  t.equal(r1.open, false, 'pulling stopped at once');
  a!.done.resolve();
  await settleMicrotasks();
  t.equal(drained, undefined, 'still waiting for the second item');
  b!.done.resolve();
  await draining;
  t.same(drained, { running: 0 });
  await settleMicrotasks();
  t.equal(s.source.requests.length, 1, 'the freed slots are not pulled again');
  t.equal(s.supervisor.running, 0);
});

t.test('drain gives up after the grace period (virtual time) and says how many still run', async (t) => {
  const clock = new VirtualTimeScheduler();
  const s = startSupervisor(t, { concurrency: 4, scheduler: clock });
  const r1 = await s.source.requested.next();
  r1.deliver('a', 'b');
  const [a] = await s.take(2);

  let drained: DemandDrainResult | undefined;
  const draining = s.supervisor.drain(5_000).then((result) => (drained = result));
  a!.done.resolve();
  await settleMicrotasks();
  clock.maxFrames = 4_999;
  clock.flush();
  await settleMicrotasks();
  t.equal(drained, undefined, 'still within the grace period');

  clock.maxFrames = 5_000;
  clock.flush();
  await draining;
  t.same(drained, { running: 1 }, 'one item outlived the grace period');
  t.equal(s.source.requests.length, 1, 'no pull after drain');
});

t.test('concurrency must be a positive integer', async (t) => {
  const pull = (): Observable<string> => new Subject<string>();
  t.throws(() => new DemandSupervisor({ concurrency: 0, pull, handle: () => undefined }), RangeError);
  t.throws(() => new DemandSupervisor({ concurrency: 1.5, pull, handle: () => undefined }), RangeError);
});
