import t, { type Test } from 'tap';
import { request } from 'undici';
import { startGateway } from '../../src/gateway/start.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { configFor, resolverFor, startTestGateway } from '../helpers/asyncfn.js';
import { startFunctionServer, slowHandler } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

/** Every refusal is a status plus exactly one line of plain text saying why. */
async function expectRefusal(t: Test, res: Awaited<ReturnType<typeof request>>, status: number, reason: RegExp): Promise<void> {
  const text = await res.body.text();
  t.equal(res.statusCode, status, `status ${status}`);
  t.match(res.headers['content-type'], /^text\/plain/);
  t.match(text, /^[^\n]+\n$/, 'one line');
  t.match(text, reason);
}

t.test('the gateway refuses bad input with a status and a one-line reason', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, slowHandler(60_000));
  const resolver = resolverFor({ echo: fn.url, slow: fn.url, gone: 'http://127.0.0.1:9' });
  // Large bodies off, so max_body_size is the async route's limit (large-payloads.test.ts covers max_large_body_size).
  const config = configFor(nats.url, { gateway: { upstreamTimeoutMs: 300, maxLargeBodyBytes: 0 } });
  const gateway = await startTestGateway(t, config, resolver);
  const url = (path: string) => `${gateway.url}${path}`;

  // OpenFaaS's GET /system/functions?namespace=: that namespace's functions only.
  const listed = async (query: string) => (await (await request(url(`/system/functions${query}`))).body.json()) as Array<{ name: string }>;
  t.same((await listed('?namespace=openfaas-fn')).map((fn) => fn.name).sort(), ['echo', 'gone', 'slow']);
  t.same(await listed('?namespace=other'), [], 'another namespace has none of them');
  await expectRefusal(t, await request(url('/system/functions?namespace=a&namespace=b')), 400, /namespace is given once, not empty/);

  for (const method of ['PUT', 'PATCH'] as const) {
    const res = await request(url('/async-function/echo'), { method });
    t.equal(res.headers.allow, 'GET, POST, DELETE', `${method}: Allow: GET, POST, DELETE`);
    await expectRefusal(t, res, 405, /not allowed.*POST invokes, GET reads, DELETE cancels/);
  }
  // GET reads an invocation; on a function's name (no such call id) it stays 405, as in OpenFaaS.
  const get = await request(url('/async-function/echo'));
  t.equal(get.headers.allow, 'GET, POST, DELETE');
  await expectRefusal(t, get, 405, /not allowed on \/async-function\/echo: POST invokes it/);

  await expectRefusal(
    t,
    await request(url('/async-function/echo'), { method: 'POST', body: Buffer.alloc(config.gateway.maxBodyBytes + 1) }),
    413,
    new RegExp(`exceeds the ${config.gateway.maxBodyBytes}-byte limit`),
  );
  await expectRefusal(
    t,
    await request(url('/async-function/echo'), { method: 'POST', headers: { 'x-callback-url': 'not a url' } }),
    400,
    /X-Callback-Url is not a valid absolute URL/,
  );
  await expectRefusal(
    t,
    await request(url('/async-function/echo'), { method: 'POST', headers: { 'x-callback-url': 'ftp://example.test/x' } }),
    400,
    /X-Callback-Url must use http or https, not ftp/,
  );
  await expectRefusal(t, await request(url('/async-function/echo'), { method: 'POST', headers: { 'x-call-id': 'has space' } }), 400, /X-Call-Id must be/);
  await expectRefusal(t, await request(url('/async-function/Not_Valid'), { method: 'POST' }), 400, /invalid function name "Not_Valid"/);
  await expectRefusal(t, await request(url('/async-function/'), { method: 'POST' }), 400, /missing function name/);
  await expectRefusal(t, await request(url('/async-function/missing'), { method: 'POST' }), 404, /function "missing" not found/);
  await expectRefusal(t, await request(url('/function/missing')), 404, /function "missing" not found/);
  await expectRefusal(t, await request(url('/function/gone')), 502, /could not reach function "gone"/);
  await expectRefusal(t, await request(url('/function/slow')), 504, /did not answer within upstream_timeout \(300 ms\)/);
  await expectRefusal(t, await request(url('/nowhere')), 404, /no route for GET \/nowhere/);
});

t.test('the gateway will not start with a body limit the NATS server cannot carry', async (t) => {
  const nats = await startNatsServer(t, 'max_payload: 65536');
  const config = configFor(nats.url);
  const started = startGateway(config, { resolver: resolverFor({}), logger: createLogger(config.log) });
  const err = await started.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, ConfigError);
  t.match((err as Error).message, /max_body_size 1024000 plus \d+ bytes for headers exceeds the NATS server's max_payload 65536/);
});
