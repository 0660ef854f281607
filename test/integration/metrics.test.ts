import t from 'tap';
import { request } from 'undici';
import { startStack, startTestWorker } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { eventually } from '../helpers/eventually.js';
import { scriptedHandler } from '../helpers/http-servers.js';
import { sample, scrape } from '../helpers/metrics-text.js';

t.test('gateway and worker metrics follow a known workload, with OpenFaaS names and labels', async (t) => {
  const { fn, sink, gateway, config, resolver } = await startStack(t, {
    handler: scriptedHandler((n) => ({ status: n === 1 ? 502 : 200 })),
    config: { retry: { maxAttempts: 3, initialWaitMs: 20, maxWaitMs: 50 } },
    worker: false,
  });
  const worker = await startTestWorker(t, config, resolver);
  await enqueueMany(gateway.url, 'work', 5, sink.url);
  await sink.waitFor(5);
  const sync = await request(`${gateway.url}/function/work`);
  await sync.body.dump();

  const gw = await scrape(gateway.url);
  t.equal(sample(gw, 'gateway_function_invocation_total', { function_name: 'work', code: '202' }), 5);
  t.equal(sample(gw, 'gateway_function_invocation_total', { function_name: 'work', code: '200' }), 1, 'the sync call, by status');
  t.equal(sample(gw, 'gateway_functions_seconds_count', { function_name: 'work', code: '202' }), 5);
  t.equal(sample(gw, 'http_requests_total', { method: 'POST', path: '/async-function/*', status: '202' }), 5, 'paths are route patterns');

  // The worker counts a settlement right after its callback; wait for the last one to be counted.
  await eventually(async () => sample(await scrape(worker.url), 'asyncfn_invocations_total', { outcome: 'succeeded' }) === 5, '5 succeeded');
  const wk = await scrape(worker.url);
  t.equal(sample(wk, 'queue_worker_messages_submitted_total', { queue_name: 'faas-request' }), 6, '5 deliveries + 1 redelivery');
  t.equal(sample(wk, 'queue_worker_messages_processed_total', { queue_name: 'faas-request' }), 6);
  t.equal(sample(wk, 'asyncfn_retries_total', { queue_name: 'faas-request', function_name: 'work' }), 1);
  t.equal(sample(wk, 'asyncfn_invocations_total', { outcome: 'retrying' }), 1);
  t.equal(sample(wk, 'asyncfn_callbacks_total', { result: 'delivered' }), 5);
  t.equal(sample(wk, 'asyncfn_invocation_duration_seconds_count', { function_name: 'work', status: '502' }), 1);
  t.equal(sample(wk, 'asyncfn_invocation_duration_seconds_count', { function_name: 'work', status: '200' }), 5);
  t.equal(sample(wk, 'asyncfn_enqueue_to_start_seconds_count', { queue_name: 'faas-request' }), 5, 'first attempts only');
  t.equal(sample(wk, 'queue_worker_function_invocation_inflight', { function_name: 'work' }), 0);
  t.equal(fn.requests.length, 7);
  t.notMatch(wk, /call_id|[0-9a-f]{8}-[0-9a-f]{4}-/, 'no call ids in labels');
});

t.test('the inflight gauge counts the invocations running at the scrape, then reads 0', async (t) => {
  const release = deferred<void>();
  t.teardown(() => release.resolve());
  const { fn, sink, gateway, config, resolver } = await startStack(t, {
    handler: async (_req, res) => {
      await release.promise;
      res.writeHead(200).end('done');
    },
    config: { worker: { maxInflight: 3 } },
    worker: false,
  });
  const worker = await startTestWorker(t, config, resolver);
  await enqueueMany(gateway.url, 'work', 3, sink.url);
  await fn.waitForConcurrent(3);
  const running = await scrape(worker.url);
  t.equal(sample(running, 'queue_worker_function_invocation_inflight', { queue_name: 'faas-request', function_name: 'work' }), 3, 'three held by the function');
  release.resolve();
  await sink.waitFor(3);
  await eventually(
    async () => /queue_worker_function_invocation_inflight\{[^}]*function_name="work"[^}]*\} 0$/m.test(await scrape(worker.url)),
    'the gauge back to 0, still exposed',
  );
});

t.test('health and readiness follow the NATS connection', async (t) => {
  const { nats, gateway, config, resolver } = await startStack(t, { worker: false });
  const worker = await startTestWorker(t, config, resolver);
  for (const url of [gateway.url, worker.url]) {
    for (const probe of ['/healthz', '/readyz']) t.equal((await request(url + probe)).statusCode, 200, `${url}${probe} up`);
  }
  await nats.stop();
  for (const url of [gateway.url, worker.url]) {
    await eventually(async () => (await request(`${url}/readyz`)).statusCode === 503, `${url}/readyz down`);
  }
  await nats.restart();
  for (const url of [gateway.url, worker.url]) {
    await eventually(async () => (await request(`${url}/readyz`)).statusCode === 200, `${url}/readyz back`);
  }
  const reconnects = sample(await scrape(worker.url), 'queue_worker_nats_reconnect_total');
  t.ok(reconnects >= 1, `worker reconnects counted (${reconnects})`);
  t.ok(sample(await scrape(gateway.url), 'gateway_nats_reconnect_total') >= 1, 'gateway reconnects counted');
});
