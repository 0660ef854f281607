import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import type { SettlementReport } from '../../../actors/queue.supervisor.js';
import { supervisorEvents } from '../../../src/worker/events.js';
import { flowControlMetrics, workerMetrics } from '../../../src/telemetry/metrics.js';
import { testInvocation } from '../../helpers/invocations.js';

/** The value of `name` for each label set, keyed by the labels' values joined with '/'. */
async function valuesOf(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric(name);
  const out: Record<string, number> = {};
  for (const v of (await metric!.get()).values) out[Object.values(v.labels).join('/')] = v.value;
  return out;
}

function report(settlement: SettlementReport['settlement']): SettlementReport {
  return { queue: 'q', lane: '', invocation: testInvocation({ callId: `c-${settlement}` }), attempt: 1, settlement, policyWarnings: [] };
}

t.test('late deliveries are counted by where they found their invocation, and not as settlements', async (t) => {
  const registry = new Registry();
  const metrics = { ...workerMetrics(registry), ...flowControlMetrics(registry) };
  const events = supervisorEvents(pino({ level: 'silent' }), false, metrics);

  events.duplicate?.('q', testInvocation({ callId: 'c-dup' }));
  events.settled(report('heldElsewhere'));
  events.settled(report('stale'));
  events.settled(report('stale'));

  t.same(await valuesOf(registry, 'asyncfn_late_deliveries_total'), { 'q/runningHere': 1, 'q/heldElsewhere': 1, 'q/settled': 2 });
  t.same(await valuesOf(registry, 'queue_worker_messages_processed_total'), {}, 'none is a settled message of this worker');
  t.same(await valuesOf(registry, 'asyncfn_invocations_total'), {}, 'none is an attempt');
});

t.test('callbacks are counted by what became of them: a hand-off that failed (unsettled) is not a hand-off', async (t) => {
  const registry = new Registry();
  const metrics = { ...workerMetrics(registry), ...flowControlMetrics(registry) };
  const events = supervisorEvents(pino({ level: 'silent' }), false, metrics);
  const outcome = { status: 200, body: new Uint8Array(0), startedAtMs: 0, durationMs: 1 };
  const withCallback = (settlement: SettlementReport['settlement'], extra: Partial<SettlementReport> = {}): SettlementReport => ({
    ...report(settlement),
    outcome,
    ...extra,
  });

  events.settled(withCallback('acked'));
  events.settled(withCallback('acked', { callbackError: 'callback failed: receiver answered 503' }));
  events.settled(withCallback('unsettled', { callbackError: 'callback failed: receiver answered 503', settleError: "'payload' max_payload size exceeded" }));
  events.settled(withCallback('acked', { callbackError: 'callback failed: receiver answered 503; not handed off: too large', deadLetter: 'callbackFailed' }));

  t.same(await valuesOf(registry, 'asyncfn_callbacks_total'), { 'q/delivered': 1, 'q/handedOff': 1, 'q/deadLettered': 1 });
  t.same(await valuesOf(registry, 'asyncfn_dead_letters_total'), { 'q/callbackFailed': 1 });
});
