import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { templateResolver, type FunctionResolver } from '../../src/functions/index.js';
import { parseFunctionsFile } from '../../src/functions/static-file.js';
import { openfaasGatewayResolver } from '../../src/functions/openfaas-gateway.js';
import { encodeEnvelope } from '../../src/queue/envelope.js';
import { configFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { startCallbackSink, startFunctionServer, type FunctionServer, type Handler } from '../helpers/http-servers.js';
import { testInvocation } from '../helpers/invocations.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { rawRequest, type RawResponse } from '../helpers/raw-http.js';

/**
 * The path-escape suite: hostile path suffixes sent over raw sockets (so no client normalises
 * them first) to a real gateway and worker, in each registry mode. Every one is refused with 400
 * and one line; no function server ever receives a request outside the function's base path.
 */

/** Suffixes after `/function/echo` or `/async-function/echo` that must never leave echo's URL. */
const HOSTILE = [
  '/../figlet',
  '/..',
  '/../',
  '/a/..',
  '/../../system/functions',
  '/../../system/functions?namespace=openfaas-fn',
  '/%2e%2e/%2e%2e/admin',
  '/%2E%2e/figlet',
  '/%2e%2E/%2e%2e/system/functions',
  '/.%2e/figlet',
  '/%2e./figlet',
  '/%252e%252e/%252e%252e/admin',
  '/a%2f..%2f..%2ffiglet',
  '/a%2F..%2F..%2Fadmin',
  '/a%252f..%252ffiglet',
  '/a%5c..%5cfiglet',
  '/./figlet',
  '/%2e/figlet',
  '/%00',
  '/a%00b',
  '/%0d%0aX-Injected:%20y',
  '/%zz',
  '/a%',
  '/..;x/figlet',
  '/%c0%ae%c0%ae/admin',
  '/../chaos?status=418',
];
/** Raw backslashes: node's parser may refuse them itself (400 malformed) or pass them to the path check. */
const BACKSLASH = ['/..\\figlet', '/a\\..\\..\\admin'];

interface Mode {
  readonly name: string;
  /** The registry, given the function host's URL. */
  readonly resolver: (hostUrl: string) => FunctionResolver;
  /** What the function host sees for `/function/echo<suffix>`. */
  readonly echoPath: (suffix: string) => string;
  /** The function host's handler; default: answers with the path it received. */
  readonly handler?: Handler;
}

const answerPath: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`reached ${req.url}`);
};

/** A fake OpenFaaS gateway: knows every function, answers each call with the path it received. */
const fakeOpenFaaSGateway: Handler = (req, res) => {
  const lookup = /^\/system\/function\/([a-z0-9-]+)\?namespace=([a-z0-9-]+)$/.exec(req.url);
  if (lookup) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name: lookup[1], namespace: lookup[2], annotations: {} }));
    return;
  }
  if (req.url.startsWith('/system/')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('[{"name":"secret-admin-function"}]');
    return;
  }
  answerPath(req, res, undefined as never);
};

const MODES: readonly Mode[] = [
  {
    name: 'functions file',
    resolver: (host) =>
      parseFunctionsFile(`functions:\n  echo:\n    url: ${host}/echo\n  figlet:\n    url: ${host}/figlet\n  chaos:\n    url: ${host}/chaos\n`, 'openfaas-fn'),
    echoPath: (suffix) => `/echo${suffix}`,
  },
  {
    name: 'URL template',
    resolver: (host) => templateResolver(`${host}/fn/{name}`),
    echoPath: (suffix) => `/fn/echo${suffix}`,
  },
  {
    name: 'OpenFaaS gateway (gateway_invoke)',
    resolver: (host) => openfaasGatewayResolver({ gatewayUrl: host, defaultNamespace: 'openfaas-fn', cacheTtlMs: 60_000 }),
    echoPath: (suffix) => `/function/echo.openfaas-fn${suffix}`,
    handler: fakeOpenFaaSGateway,
  },
];

function send(gatewayUrl: string, method: string, target: string, body = ''): Promise<RawResponse> {
  const host = new URL(gatewayUrl).host;
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${host}`, 'Connection: close', 'X-Callback-Url: ' + CALLBACK_PLACEHOLDER];
  if (body !== '') lines.push('Content-Type: text/plain', `Content-Length: ${Buffer.byteLength(body)}`);
  return rawRequest(gatewayUrl, lines.join('\r\n'), body);
}
// Replaced per test with the callback sink's URL.
let CALLBACK_PLACEHOLDER = 'http://127.0.0.1:9/';

function expectRefused(t: Test, res: RawResponse, what: string, code: RegExp = /^ASYNCFN_ERR_PATH_REFUSED$/): void {
  t.equal(res.status, 400, `${what}: 400`);
  t.match(res.header('content-type'), /^text\/plain/, `${what}: text`);
  t.match(res.body, /^[^\n]+\n$/, `${what}: one line`);
  t.match(res.header('x-asyncfn-error'), code, `${what}: ${code}`);
  if (code.test('ASYNCFN_ERR_PATH_REFUSED')) t.match(res.body, /^path refused: /, `${what}: says why`);
}

/** Every request the function host received is under echo's base path (or a registry lookup). */
function assertConfined(t: Test, host: FunctionServer, mode: Mode): void {
  const base = mode.echoPath('');
  for (const r of host.requests) {
    const lookup = mode.handler === fakeOpenFaaSGateway && /^\/system\/function\/echo\?namespace=openfaas-fn$/.test(r.url) && r.method === 'GET';
    t.ok(lookup || r.url === base || r.url.startsWith(`${base}/`) || r.url.startsWith(`${base}?`), `${r.method} ${r.url} is under ${base}`);
    t.notMatch(r.url, /^\/system\/functions/, 'never the upstream /system/functions');
  }
}

for (const mode of MODES) {
  t.test(`${mode.name}: hostile suffixes are refused, nothing leaves the function's URL`, async (t) => {
    const nats = await startNatsServer(t);
    const host = await startFunctionServer(t, mode.handler ?? answerPath);
    const sink = await startCallbackSink(t);
    CALLBACK_PLACEHOLDER = sink.url;
    const config = configFor(nats.url);
    const gateway = await startTestGateway(t, config, mode.resolver(host.url));
    await startTestWorker(t, config, mode.resolver(host.url));

    for (const suffix of HOSTILE) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        expectRefused(t, await send(gateway.url, method, `/function/echo${suffix}`, method === 'POST' ? 'Hi' : ''), `${method} /function/echo${suffix}`);
      }
      expectRefused(t, await send(gateway.url, 'POST', `/async-function/echo${suffix}`, 'Hi'), `POST /async-function/echo${suffix}`);
      // The namespaced form too.
      expectRefused(t, await send(gateway.url, 'GET', `/function/echo.openfaas-fn${suffix}`), `GET /function/echo.openfaas-fn${suffix}`);
    }
    for (const suffix of BACKSLASH) {
      for (const target of [`/function/echo${suffix}`, `/async-function/echo${suffix}`]) {
        expectRefused(t, await send(gateway.url, 'POST', target, 'Hi'), `POST ${target}`, /^ASYNCFN_ERR_(PATH_REFUSED|BAD_REQUEST)$/);
      }
    }

    // Suffixes that look odd but stay under the base reach the function unchanged.
    const sync = await send(gateway.url, 'GET', '/function/echo/a..b/..c/%2525/?q=../..');
    t.equal(sync.status, 200, 'a harmless suffix is proxied');
    t.equal(sync.body, `reached ${mode.echoPath('/a..b/..c/%2525/')}?q=../..`, 'byte for byte, query included');

    // Async: the valid invocation runs echo, and the callback, record and metrics all say echo.
    const accepted = await send(gateway.url, 'POST', '/async-function/echo/a..b?status=418', 'Hi');
    t.equal(accepted.status, 202, 'a harmless async suffix is accepted');
    const callId = accepted.header('x-call-id')!;
    const callback = await sink.waitForCallId(callId);
    t.equal(callback.headers['x-function-name'], 'echo', 'the callback names the function called');
    t.equal(callback.body.toString(), `reached ${mode.echoPath('/a..b')}?status=418`, 'echo received it under its own path');
    t.equal(sink.received.length, 1, 'no refused invocation was ever run');
    const record = await request(`${gateway.url}/async-function/${callId}?wait=10s`);
    t.match(await record.body.json(), { function: 'echo', state: 'succeeded' }, 'the record names echo');
    const metrics = await (await request(`${gateway.url}/metrics`)).body.text();
    t.notMatch(metrics, /function_name="(figlet|chaos|admin|system)/, 'no other function in the metrics');

    assertConfined(t, host, mode);
    t.ok(host.requests.length >= 2, 'the function host did receive the harmless calls');
  });
}

t.test('the worker refuses a hostile path published onto the stream by something else: 400, echo not called, nothing else called', async (t) => {
  const nats = await startNatsServer(t);
  const host = await startFunctionServer(t, answerPath);
  const sink = await startCallbackSink(t);
  const resolver = () => parseFunctionsFile(`functions:\n  echo:\n    url: ${host.url}/echo\n  figlet:\n    url: ${host.url}/figlet\n`, 'openfaas-fn');
  const config = configFor(nats.url);
  await startTestGateway(t, config, resolver());
  await startTestWorker(t, config, resolver());

  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const js = jetstream(nc);
  const paths = ['/../figlet', '/%2e%2e/%2e%2e/admin', '/a%2f..%2ffiglet', '../figlet'];
  for (const [i, path] of paths.entries()) {
    const inv = testInvocation({ callId: `foreign-${i}`, functionName: 'echo', path, query: 'status=418', callbackUrl: sink.url, enqueuedAtMs: Date.now() });
    const { headers, data } = encodeEnvelope(inv);
    await js.publish('faas-request', data, { headers });
  }
  for (const [i, path] of paths.entries()) {
    const callback = await sink.waitForCallId(`foreign-${i}`);
    t.equal(callback.headers['x-function-status'], '400', `${path}: the attempt failed with 400`);
    t.equal(callback.headers['x-function-name'], 'echo', `${path}: named as the function asked for`);
    t.match(callback.body.toString(), /^function "echo" not called: path refused: /, `${path}: the reason`);
  }
  t.same(host.requests, [], 'no function was called');
});
