import { Registry } from 'prom-client';
import t from 'tap';
import { workerMetrics, type InFlightSample } from '../../../src/telemetry/metrics.js';

const NAME = 'queue_worker_function_invocation_inflight';

/** The gauge's samples as `queue/function → value`, read as a scrape reads them. */
async function scrape(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric(NAME)!.get();
  return Object.fromEntries(metric.values.map((v) => [`${String(v.labels.queue_name)}/${String(v.labels.function_name)}`, v.value]));
}

t.test('the inflight gauge counts what the registries hold at each scrape, per queue and function', async (t) => {
  const registry = new Registry();
  let inFlight: InFlightSample[] = [];
  workerMetrics(registry, () => inFlight);

  t.same(await scrape(registry), {}, 'nothing seen yet: no series');

  inFlight = [
    { queue: 'faas-request', functionName: 'resize' },
    { queue: 'faas-request', functionName: 'resize' },
    { queue: 'faas-request', functionName: 'thumb' },
    { queue: 'slow', functionName: 'resize' },
  ];
  t.same(await scrape(registry), { 'faas-request/resize': 2, 'faas-request/thumb': 1, 'slow/resize': 1 });

  inFlight = [{ queue: 'slow', functionName: 'resize' }];
  t.same(await scrape(registry), { 'faas-request/resize': 0, 'faas-request/thumb': 0, 'slow/resize': 1 }, 'a function seen before reads 0, not absent');

  inFlight = [];
  t.same(await scrape(registry), { 'faas-request/resize': 0, 'faas-request/thumb': 0, 'slow/resize': 0 });
  t.match(await registry.metrics(), /queue_worker_function_invocation_inflight\{queue_name="faas-request",function_name="resize"\} 0/, 'exposed as text too');
});

t.test('a function whose invocations all settled between two scrapes reads 0, not absent', async (t) => {
  const registry = new Registry();
  const metrics = workerMetrics(registry, () => []);
  t.same(await scrape(registry), {});
  metrics.invocations.inc({ queue_name: 'faas-request', function_name: 'resize', outcome: 'succeeded' });
  t.same(await scrape(registry), { 'faas-request/resize': 0 }, 'seen from its settlement');
});
