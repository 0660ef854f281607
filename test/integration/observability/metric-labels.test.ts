import t from 'tap';
import { request } from 'undici';
import { configFor, startStack, startTestGateway, startTestWorker } from '../../helpers/asyncfn.js';
import { deferred } from '../../helpers/deferred.js';
import { enqueueMany } from '../../helpers/enqueue.js';
import { eventually } from '../../helpers/eventually.js';
import { startCallbackSink, startFunctionServer } from '../../helpers/http-servers.js';
import { startNatsServer } from '../../helpers/nats-server.js';
import { templateResolver } from '../../../src/functions/url-template.js';

const scrape = async (url: string): Promise<string> => (await request(`${url}/metrics`)).body.text();

/** The distinct `function_name` values of a scrape. */
function functionNames(text: string): Set<string> {
  return new Set([...text.matchAll(/function_name="([^"]*)"/g)].map((m) => m[1]!));
}

/** The value of the sample of `name` with these labels (among others); absent: undefined. */
function value(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('made-up names through a registry that resolves any name keep function_name bounded, gateway and worker', async (t) => {
  const cap = 3;
  const names = Array.from({ length: 12 }, (_, i) => `made-up-${i}`);
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const sink = await startCallbackSink(t);
  const resolver = templateResolver(`${fn.url}/{name}`);
  const config = configFor(nats.url, { runtime: { metricsFunctionNames: cap } });
  const gateway = await startTestGateway(t, config, resolver);
  const worker = await startTestWorker(t, config, resolver);
  for (const name of names) await enqueueMany(gateway.url, name, 1, sink.url);
  for (const name of names) await (await request(`${gateway.url}/function/${name}`)).body.dump();
  await sink.waitFor(names.length);
  // The worker counts a settlement right after its callback.
  await eventually(
    async () => value(await scrape(worker.url), 'queue_worker_messages_processed_total', { queue_name: 'faas-request' }) === names.length,
    'every settlement counted',
  );

  const expected = new Set([...names.slice(0, cap), '_other']);
  const gw = await scrape(gateway.url);
  t.same(functionNames(gw), expected, 'the gateway: the first names, then _other');
  t.equal(value(gw, 'gateway_function_invocation_total', { function_name: '_other', code: '202' }), names.length - cap, 'the rest counted, under _other');
  t.equal(value(gw, 'gateway_function_invocation_total', { function_name: '_other', code: '200' }), names.length - cap);
  const wk = await scrape(worker.url);
  // The worker meets the names in its own order (a lane's poll may see one first); "" is the queue's pending gauge.
  const own = [...functionNames(wk)].filter((name) => name !== '' && name !== '_other');
  t.equal(own.length, cap, 'the worker: the same bound');
  t.ok(
    own.every((name) => names.includes(name)),
    'names it was given',
  );
  t.ok(functionNames(wk).has('_other'), 'the rest under _other');
  t.equal(value(wk, 'asyncfn_invocations_total', { queue_name: 'faas-request', function_name: '_other', outcome: 'succeeded' }), names.length - cap);
});

t.test('a 503 answered before the function is resolved is counted by route, under no function name', async (t) => {
  const { nats, gateway } = await startStack(t, { worker: false });
  await nats.stop();
  await eventually(async () => (await request(`${gateway.url}/readyz`)).statusCode === 503, 'the gateway sees NATS down');
  const res = await request(`${gateway.url}/async-function/down-1`, { method: 'POST', body: 'x' });
  await res.body.dump();
  t.equal(res.statusCode, 503);
  const gw = await scrape(gateway.url);
  t.notMatch(gw, /function_name="down-1"/, 'the caller’s name is no label');
  t.equal(value(gw, 'http_requests_total', { method: 'POST', path: '/async-function/*', status: '503' }), 1, 'the route counts it');
});

t.test('gateway_function_invocation_started counts a sync call as it starts, the total as it ends', async (t) => {
  const release = deferred<void>();
  t.teardown(() => release.resolve());
  const called = deferred<void>();
  const { gateway } = await startStack(t, {
    worker: false,
    handler: async (_req, res) => {
      called.resolve();
      await release.promise;
      res.writeHead(200).end('done');
    },
  });
  const call = request(`${gateway.url}/function/work`);
  await called.promise;
  const during = await scrape(gateway.url);
  t.equal(value(during, 'gateway_function_invocation_started', { function_name: 'work' }), 1, 'started while the call runs');
  t.equal(value(during, 'gateway_function_invocation_total', { function_name: 'work', code: '200' }), undefined, 'not yet answered');
  release.resolve();
  await (await call).body.dump();
  await eventually(async () => value(await scrape(gateway.url), 'gateway_function_invocation_total', { function_name: 'work', code: '200' }) === 1, 'the answer counted');
  t.equal(value(await scrape(gateway.url), 'gateway_function_invocation_started', { function_name: 'work' }), 1, 'started once');
});
