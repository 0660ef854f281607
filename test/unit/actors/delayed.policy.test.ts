import t from 'tap';
import { decideDelayed } from '../../../actors/delayed.policy.js';

t.test('due at or after its time; otherwise wait exactly what is left', async (t) => {
  t.same(decideDelayed(10_500, 10_000), { due: false, waitMs: 500 });
  t.same(decideDelayed(10_000, 10_000), { due: true });
  t.same(decideDelayed(9_000, 10_000), { due: true });
});

t.test('an unknown time is due: the worker judges the envelope', async (t) => {
  t.same(decideDelayed(undefined, 10_000), { due: true });
});

t.test('the wait is whole ms: JetStream reads a fractional nak delay as none', async (t) => {
  t.same(decideDelayed(10_500, 10_000.25), { due: false, waitMs: 500 });
  t.same(decideDelayed(10_001, 10_000.5), { due: false, waitMs: 1 });
});
