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

t.test('each tick calls working() once on every tracked handle, and only on those', async (t) => {
  const { scheduler, advanceTo } = virtualClock();
  const extender = new AckExtender(1000, scheduler);
  const a = countingHandle();
  const b = countingHandle();
  const untracked = countingHandle();
  extender.track(a);
  extender.track(b);
  extender.start();

  advanceTo(999);
  t.same([a.extended, b.extended], [0, 0], 'nothing before the first interval');
  advanceTo(1000);
  t.same([a.extended, b.extended], [1, 1], 'first tick');
  advanceTo(3000);
  t.same([a.extended, b.extended], [3, 3], 'one call per tick');
  t.equal(untracked.extended, 0, 'untracked handle never extended');

  extender.untrack(b);
  advanceTo(4000);
  t.same([a.extended, b.extended], [4, 3], 'an untracked handle is no longer extended');
  extender.stop();
});

t.test('tracking the same handle twice extends it once per tick', async (t) => {
  const { scheduler, advanceTo } = virtualClock();
  const extender = new AckExtender(500, scheduler);
  const a = countingHandle();
  extender.track(a);
  extender.track(a);
  t.equal(extender.size, 1);
  extender.start();
  advanceTo(1000);
  t.equal(a.extended, 2);
  extender.stop();
});

t.test('stop() ends ticking; start() twice runs a single ticker', async (t) => {
  const { scheduler, advanceTo } = virtualClock();
  const extender = new AckExtender(1000, scheduler);
  const a = countingHandle();
  extender.track(a);
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

t.test('sweep() extends every tracked handle and returns the count', async (t) => {
  const extender = new AckExtender(1000, new VirtualTimeScheduler());
  t.equal(extender.sweep(), 0, 'nothing tracked');
  const handles = [countingHandle(), countingHandle(), countingHandle()];
  for (const h of handles) extender.track(h);
  t.equal(extender.size, 3);
  t.equal(extender.sweep(), 3);
  t.same(
    handles.map((h) => h.extended),
    [1, 1, 1],
  );
  extender.untrack(handles[0]!);
  t.equal(extender.sweep(), 2);
  t.same(
    handles.map((h) => h.extended),
    [1, 2, 2],
  );
});

t.test('ackExtendIntervalMs is a third of ack_wait with a 100 ms floor', async (t) => {
  t.equal(ackExtendIntervalMs(60_000), 20_000);
  t.equal(ackExtendIntervalMs(30_000), 10_000);
  t.equal(ackExtendIntervalMs(1000), 333, 'rounded down');
  t.equal(ackExtendIntervalMs(300), 100);
  t.equal(ackExtendIntervalMs(299), 100, 'floor');
  t.equal(ackExtendIntervalMs(0), 100, 'floor');
});
