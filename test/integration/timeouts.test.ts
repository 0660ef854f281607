import t, { type Test } from 'tap';
import { request } from 'undici';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import type { DeepPartial, Config } from '../../src/config/index.js';
import { staticResolver } from '../../src/functions/static-file.js';
import { configFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { slowHandler, startCallbackSink, startFunctionServer, type CallbackSink } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

// Per-function and per-call timeouts (issue 16, item 5): a function that sleeps 3 s, cut off at
// 1 s by its annotation or the caller's X-Timeout, while the queue's upstream_timeout would wait.
const SLEEP_MS = 3_000;

/** nats-server, one slow function server registered under each name with its annotations, a sink, a gateway and a worker. */
async function stack(t: Test, functions: Record<string, Record<string, string>>, config: DeepPartial<Config> = {}) {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, slowHandler(SLEEP_MS, 'slept'));
  const sink = await startCallbackSink(t);
  const resolver = staticResolver(Object.fromEntries(Object.entries(functions).map(([name, annotations]) => [name, { url: fn.url, annotations }])), 'openfaas-fn');
  const cfg = configFor(nats.url, config);
  const gateway = await startTestGateway(t, cfg, resolver);
  await startTestWorker(t, cfg, resolver);
  return { nats, fn, sink, gateway, config: cfg };
}

async function invoke(gatewayUrl: string, name: string, sink: CallbackSink, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(`${gatewayUrl}/async-function/${name}`, { method: 'POST', body: 'job', headers: { 'x-callback-url': sink.url, ...headers } });
  const text = await res.body.text();
  if (res.statusCode !== 202) throw new Error(`${name} answered ${res.statusCode}: ${text}`);
  return String(res.headers['x-call-id']);
}

t.test('com.openfaas.timeout: 1s cuts a 3 s call to a 504 while upstream_timeout is 60s; dead-lettered as any exhausted 504', async (t) => {
  const { nats, sink, gateway, config } = await stack(t, { annotated: { 'com.openfaas.timeout': '1s' } });
  t.equal(config.worker.upstreamTimeoutMs, 60_000, "the queue's limit would wait for the function");
  const callId = await invoke(gateway.url, 'annotated', sink);
  const callback = await sink.waitForCallId(callId);
  t.equal(callback.headers['x-function-status'], '504');
  t.match(callback.body.toString(), /did not answer within com\.openfaas\.timeout \(1000 ms\)/, 'the body names the limit that applied');
  t.ok(Number(callback.headers['x-duration-seconds']) < SLEEP_MS / 1000, `cut off before the function answered (${String(callback.headers['x-duration-seconds'])} s)`);

  const out: string[] = [];
  t.equal(await runDlqCommand(['list', '--json'], { natsUrl: nats.url, out: (l) => out.push(l), err: () => undefined }), 0);
  t.match(
    out.map((line) => JSON.parse(line) as unknown),
    [{ callId, reason: 'retriesExhausted', status: 504 }],
    'one attempt allowed: the 504 takes the existing path to the dead letters',
  );

  // The synchronous route honours the annotation too, with the same cap.
  const sync = await request(`${gateway.url}/function/annotated`, { method: 'POST', body: 'now' });
  t.equal(sync.statusCode, 504);
  t.equal(sync.headers['x-asyncfn-error'], 'ASYNCFN_ERR_UPSTREAM_TIMEOUT');
  t.match(await sync.body.text(), /did not answer within com\.openfaas\.timeout \(1000 ms\)/);
});

t.test('X-Timeout: 1s cuts one call of an unannotated function; the same call without it runs to the end', async (t) => {
  const { fn, sink, gateway } = await stack(t, { plain: {} });
  const [limited, unlimited] = await Promise.all([invoke(gateway.url, 'plain', sink, { 'x-timeout': '1s' }), invoke(gateway.url, 'plain', sink)]);
  const cut = await sink.waitForCallId(limited);
  t.equal(cut.headers['x-function-status'], '504');
  t.match(cut.body.toString(), /did not answer within X-Timeout \(1000 ms\)/);
  const whole = await sink.waitForCallId(unlimited);
  t.equal(whole.headers['x-function-status'], '200');
  t.equal(whole.body.toString(), 'slept');
  t.equal(fn.requests.length, 2);
  for (const req of fn.requests) t.equal(req.headers['x-timeout'], undefined, 'asyncfn consumed X-Timeout: the function never sees it');
});

t.test("neither X-Timeout nor the annotation goes above the queue's upstream_timeout", async (t) => {
  const { sink, gateway } = await stack(t, { plain: {}, generous: { 'com.asyncfn.timeout': '2m' } }, { worker: { upstreamTimeoutMs: 1_000 } });
  const [raised, annotated] = await Promise.all([invoke(gateway.url, 'plain', sink, { 'x-timeout': '30s' }), invoke(gateway.url, 'generous', sink)]);
  for (const callId of [raised, annotated]) {
    const callback = await sink.waitForCallId(callId);
    t.equal(callback.headers['x-function-status'], '504');
    t.match(callback.body.toString(), /did not answer within upstream_timeout \(1000 ms\)/, 'capped');
  }
});

t.test('a bad X-Timeout is refused at submit: 400, one line, ASYNCFN_ERR_BAD_REQUEST', async (t) => {
  const { gateway } = await stack(t, { plain: {} });
  for (const bad of ['soon', '0', '-1s']) {
    const res = await request(`${gateway.url}/async-function/plain`, { method: 'POST', headers: { 'x-timeout': bad } });
    t.equal(res.statusCode, 400, bad);
    t.equal(res.headers['x-asyncfn-error'], 'ASYNCFN_ERR_BAD_REQUEST');
    t.equal(await res.body.text(), 'X-Timeout must be a duration ≥ 1ms like 30s, 2m, 500ms or bare seconds\n');
  }
});
