import t from 'tap';
import { schedulingDecision } from '../../../src/queue/delayed.js';
import { claimIds } from '../../../src/status/idempotency.js';
import { delayedSubject, schedulerDurable } from '../../../src/queue/topology.js';

t.test('a delayed invocation waits exactly the time it has left, then is due', async (t) => {
  t.same(schedulingDecision(String(10_500), 10_000), { due: false, waitMs: 500 });
  t.same(schedulingDecision(String(10_000), 10_000), { due: true });
  t.same(schedulingDecision(String(9_000), 10_000), { due: true });
});

t.test('an unreadable time is due at once: the worker judges the envelope and dead-letters it if it is bad', async (t) => {
  for (const header of [undefined, '', 'soon', '1.5', String(Number.MAX_SAFE_INTEGER + 10)]) {
    t.same(schedulingDecision(header, 10_000), { due: true }, String(header));
  }
});

t.test('names: one delayed subject and scheduler consumer per queue', async (t) => {
  t.equal(delayedSubject('faas-request'), 'asyncfn.delayed.faas-request');
  t.equal(schedulerDurable({ stream: 'slow' }), 'asyncfn-scheduler-slow');
});

t.test('idempotency ids: stable per function and key, distinct across functions, safe as KV keys', async (t) => {
  const a = claimIds('openfaas-fn/figlet', 'order 42/ü');
  t.same(claimIds('openfaas-fn/figlet', 'order 42/ü'), a, 'stable');
  t.not(claimIds('openfaas-fn/echo', 'order 42/ü').kvKey, a.kvKey, 'scoped by function');
  t.match(a.kvKey, /^[0-9a-f]{64}$/);
  t.equal(a.msgId, `asyncfn-idem-${a.kvKey}`);
});
