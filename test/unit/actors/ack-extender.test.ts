import { VirtualAction, VirtualTimeScheduler } from 'rxjs';
import t from 'tap';
import { AckExtender, ackExtendIntervalMs } from '../../../actors/ack-extender.js';
import type { MessageHandle } from '../../../actors/invocation.types.js';

/** A MessageHandle that only counts working() calls; anything else is a test failure. */
function countingHandle(): MessageHandle & { readonly extended: number } {
  let extended = 0;
  const unexpected = (op: string) => () => {
    throw new Error(`the ack extender must not call ${op}()`);
  };
  return {
    deliveryCount: 1,
    working: () => {
      extended += 1;
    },
    nak: unexpected('nak'),
    nakConfirmed: unexpected('nakConfirmed'),
    term: unexpected('term'),
    ackAck: unexpected('ackAck'),
    get extended() {
      return extended;
    },
  };
}

/** Virtual time: `advanceTo(ms)` runs every action due at or before `ms` and nothing later. */
function virtualClock() {
  const scheduler = new VirtualTimeScheduler(VirtualAction, 0);
  const advanceTo = (ms: number): void => {
    scheduler.maxFrames = ms;
    scheduler.flush();
  };
  return { scheduler, advanceTo };
}

/** An AckExtender over a set the test owns, as the supervisor's registry would be. */
function extenderOver(intervalMs: number, scheduler: VirtualTimeScheduler, sweeps: number[] = []) {
  const inFlight = new Set<MessageHandle>();
  const extender = new AckExtender(
    intervalMs,
    scheduler,
    (n) => void sweeps.push(n),
    () => inFlight,
  );
  return { extender, inFlight, sweeps };
}

t.test('each tick calls working() once on every message in flight, and only on those', async (t) => {
  const { scheduler, advanceTo } = virtualClock();
  const { extender, inFlight } = extenderOver(1000, scheduler);
  const a = countingHandle();
  const b = countingHandle();
  const other = countingHandle();
  inFlight.add(a);
  inFlight.add(b);
  extender.start();

  advanceTo(999);
  t.same([a.extended, b.extended], [0, 0], 'nothing before the first interval');
  advanceTo(1000);
  t.same([a.extended, b.extended], [1, 1], 'first tick');
  advanceTo(3000);
  t.same([a.extended, b.extended], [3, 3], 'one call per tick');
  t.equal(other.extended, 0, 'a message not in flight is never extended');

  inFlight.delete(b);
  advanceTo(4000);
  t.same([a.extended, b.extended], [4, 3], 'a settled message is no longer extended');
  extender.stop();
});

t.test('stop() ends ticking; start() twice runs a single ticker', async (t) => {
  const { scheduler, advanceTo } = virtualClock();
  const { extender, inFlight } = extenderOver(1000, scheduler);
  const a = countingHandle();
  inFlight.add(a);
  extender.start();
  advanceTo(2000);
  t.equal(a.extended, 2);

  extender.stop();
  t.equal(scheduler.actions.length, 0, 'no timer left scheduled');
  advanceTo(10_000);
  t.equal(a.extended, 2, 'no tick after stop');
  extender.stop();

  extender.start();
  extender.start();
  advanceTo(scheduler.frame + 1000);
  t.equal(a.extended, 3, 'restarted; a second start() did not add a ticker');
  extender.stop();
});

t.test('sweep() extends every message in flight, returns the count and reports non-empty sweeps', async (t) => {
  const { extender, inFlight, sweeps } = extenderOver(1000, new VirtualTimeScheduler());
  t.equal(extender.sweep(), 0, 'nothing in flight');
  const handles = [countingHandle(), countingHandle(), countingHandle()];
  for (const h of handles) inFlight.add(h);
  t.equal(extender.sweep(), 3);
  t.same(
    handles.map((h) => h.extended),
    [1, 1, 1],
  );
  inFlight.delete(handles[0]!);
  t.equal(extender.sweep(), 2);
  t.same(
    handles.map((h) => h.extended),
    [1, 2, 2],
  );
  t.same(sweeps, [3, 2], 'an empty sweep is not reported');
});

t.test('sweepIfDue: a sweep once a whole interval has passed since the last, whoever asks; never twice for one interval', async (t) => {
  const { scheduler, advanceTo } = virtualClock();
  const { extender, inFlight } = extenderOver(1000, scheduler);
  const a = countingHandle();
  inFlight.add(a);
  extender.sweepIfDue(5000);
  t.equal(a.extended, 0, 'not started: never sweeps');
  extender.start();

  extender.sweepIfDue(999);
  t.equal(a.extended, 0, 'within the first interval');
  // A transition at 1000 ms, before the ticker's turn (the event loop was busy with I/O).
  extender.sweepIfDue(1000);
  t.equal(a.extended, 1, 'swept by the transition');
  advanceTo(1000);
  t.equal(a.extended, 1, 'the tick right after finds it done: no second sweep for the same interval');
  extender.sweepIfDue(1999);
  t.equal(a.extended, 1);
  advanceTo(2000);
  t.equal(a.extended, 2, 'the ticker sweeps the next interval');
  extender.stop();
  extender.sweepIfDue(10_000);
  t.equal(a.extended, 2, 'stopped: never sweeps');
});

t.test('ackExtendIntervalMs is a third of ack_wait with a 100 ms floor', async (t) => {
  t.equal(ackExtendIntervalMs(60_000), 20_000);
  t.equal(ackExtendIntervalMs(30_000), 10_000);
  t.equal(ackExtendIntervalMs(1000), 333, 'rounded down');
  t.equal(ackExtendIntervalMs(300), 100);
  t.equal(ackExtendIntervalMs(299), 100, 'floor');
  t.equal(ackExtendIntervalMs(0), 100, 'floor');
});
