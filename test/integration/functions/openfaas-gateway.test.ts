import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { createResolver, type FunctionRef } from '../../../src/functions/index.js';
import { openfaasGatewayResolver } from '../../../src/functions/openfaas-gateway.js';
import { gatewayLookups } from '../../../src/cli/function-lookups.js';
import { configFor } from '../../helpers/asyncfn.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** All the fake server needs of a test: somewhere to register its cleanup. */
type Test = Pick<typeof t, 'teardown'>;

interface FakeGateway {
  url: string;
  /** Requests received, as "path?query". */
  requests: string[];
  /** Authorization headers received. */
  auth: Array<string | undefined>;
  /** When set, every request gets this answer instead. */
  failWith?: { status: number; body: string };
  /** When true, requests are never answered. */
  hang: boolean;
  /** When set, a request without exactly this Authorization header gets 401, as OpenFaaS's basic auth answers. */
  requireAuth?: string;
}

/**
 * A real HTTP server answering like the OpenFaaS gateway's /system/function/<name> and
 * /system/functions (FunctionStatus JSON, 404 for unknown functions).
 */
async function startFakeGateway(t: Test, functions: Record<string, Record<string, string> | null>): Promise<FakeGateway> {
  const gw: FakeGateway = { url: '', requests: [], auth: [], hang: false };
  const status = (key: string) => {
    const [name, namespace] = key.split('.');
    const annotations = functions[key];
    // OpenFaaS omits empty annotations (omitempty); imitate that for a null entry.
    return { name, namespace, image: `ghcr.io/example/${name}:latest`, replicas: 1, availableReplicas: 1, ...(annotations ? { annotations } : {}) };
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    gw.requests.push(req.url ?? '');
    gw.auth.push(req.headers.authorization);
    if (gw.hang) return;
    if (gw.requireAuth !== undefined && req.headers.authorization !== gw.requireAuth) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="Restricted"' });
      return void res.end('Unauthorized');
    }
    const json = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (gw.failWith) {
      res.writeHead(gw.failWith.status, { 'content-type': 'text/plain' });
      return void res.end(gw.failWith.body);
    }
    const url = new URL(req.url ?? '/', 'http://gateway');
    const namespace = url.searchParams.get('namespace') ?? 'openfaas-fn';
    const one = url.pathname.match(/^\/system\/function\/([^/]+)$/);
    if (one) {
      const key = `${one[1]}.${namespace}`;
      if (key in functions) return json(200, status(key));
      res.writeHead(404, { 'content-type': 'text/plain' });
      return void res.end(`No such function: ${one[1]}`);
    }
    if (url.pathname === '/system/functions') {
      return json(
        200,
        Object.keys(functions)
          .filter((k) => k.endsWith(`.${namespace}`))
          .map(status),
      );
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  gw.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return gw;
}

const echo: FunctionRef = { name: 'echo', namespace: 'openfaas-fn' };
const FUNCTIONS = {
  'echo.openfaas-fn': { 'com.openfaas.queue': 'slow', 'com.openfaas.retry.attempts': '5' },
  'plain.openfaas-fn': null,
  'other.team-a': { 'com.openfaas.queue': 'a' },
};

/** A clock the test moves by hand. */
function manualClock() {
  const clock = { ms: 1_000_000, now: () => clock.ms };
  return clock;
}

t.test('resolves a function the gateway knows, with its annotations and a gateway_invoke URL', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  const r = openfaasGatewayResolver({ gatewayUrl: `${gw.url}/`, defaultNamespace: 'openfaas-fn' });
  t.same(await r.resolve(echo), {
    name: 'echo',
    namespace: 'openfaas-fn',
    url: `${gw.url}/function/echo.openfaas-fn`,
    annotations: { 'com.openfaas.queue': 'slow', 'com.openfaas.retry.attempts': '5' },
  });
  t.same((await r.resolve({ name: 'other', namespace: 'team-a' }))?.annotations, { 'com.openfaas.queue': 'a' });
  t.same((await r.resolve({ name: 'plain', namespace: 'openfaas-fn' }))?.annotations, {}, 'no annotations field');
  t.equal(await r.resolve({ name: 'missing', namespace: 'openfaas-fn' }), undefined, '404 → undefined');
  t.equal(await r.resolve({ name: 'echo', namespace: 'team-a' }), undefined, 'the namespace is part of the lookup');
  t.same(gw.requests, [
    '/system/function/echo?namespace=openfaas-fn',
    '/system/function/other?namespace=team-a',
    '/system/function/plain?namespace=openfaas-fn',
    '/system/function/missing?namespace=openfaas-fn',
    '/system/function/echo?namespace=team-a',
  ]);
});

t.test('found and not-found answers are cached for 5 s', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  const clock = manualClock();
  const r = openfaasGatewayResolver({ gatewayUrl: gw.url, defaultNamespace: 'openfaas-fn', now: clock.now });
  const missing = { name: 'missing', namespace: 'openfaas-fn' };

  t.equal(r.resolveNow?.(echo), undefined, 'not at hand before the gateway was asked');
  await r.resolve(echo);
  await r.resolve(missing);
  clock.ms += 4999;
  t.equal((await r.resolve(echo))?.name, 'echo');
  t.equal(await r.resolve(missing), undefined);
  t.equal(gw.requests.length, 2, 'answers within 5 s come from the cache');
  t.equal(r.resolveNow?.(echo), await r.resolve(echo), 'a cached function is at hand');
  t.equal(r.resolveNow?.(missing), undefined, 'a cached 404 is not: resolve says it');

  clock.ms += 1;
  t.equal(r.resolveNow?.(echo), undefined, 'an expired answer is not at hand');
  await r.resolve(echo);
  await r.resolve(missing);
  t.equal(gw.requests.length, 4, 'expired answers are asked again');
});

t.test('concurrent lookups of one function share a request', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  const r = openfaasGatewayResolver({ gatewayUrl: gw.url, defaultNamespace: 'openfaas-fn' });
  const all = await Promise.all([r.resolve(echo), r.resolve(echo), r.resolve(echo)]);
  t.ok(all.every((f) => f?.annotations['com.openfaas.queue'] === 'slow'));
  t.equal(gw.requests.length, 1);
});

t.test('a gateway that cannot tell does not block invocations, and is asked again next time', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  gw.failWith = { status: 500, body: 'provider unavailable' };
  const failures: string[] = [];
  const r = openfaasGatewayResolver({
    gatewayUrl: gw.url,
    defaultNamespace: 'openfaas-fn',
    now: manualClock().now,
    onLookupFailed: (ref, reason) => failures.push(`${ref.name}: ${reason}`),
  });
  t.same(await r.resolve(echo), {
    name: 'echo',
    namespace: 'openfaas-fn',
    url: `${gw.url}/function/echo.openfaas-fn`,
    annotations: {},
  });
  t.ok(await r.resolve({ name: 'missing', namespace: 'openfaas-fn' }), 'even an unknown name resolves');
  t.same(failures, ['echo: gateway answered 500', 'missing: gateway answered 500']);

  gw.failWith = undefined;
  t.same((await r.resolve(echo))?.annotations, FUNCTIONS['echo.openfaas-fn'], 'the fallback was not cached');
  t.equal(gw.requests.length, 3);
});

t.test('after a failed refresh the last known annotations are kept', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  const clock = manualClock();
  const r = openfaasGatewayResolver({ gatewayUrl: gw.url, defaultNamespace: 'openfaas-fn', now: clock.now });
  await r.resolve(echo);
  clock.ms += 60_000;
  gw.failWith = { status: 502, body: 'bad gateway' };
  t.same((await r.resolve(echo))?.annotations, FUNCTIONS['echo.openfaas-fn'], 'the function keeps its queue');
  t.equal(gw.requests.length, 2);
});

t.test('a 200 that is not a FunctionStatus counts as cannot tell', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  gw.failWith = { status: 200, body: '<html>login</html>' };
  const r = openfaasGatewayResolver({ gatewayUrl: gw.url, defaultNamespace: 'openfaas-fn' });
  t.same((await r.resolve(echo))?.annotations, {});
  await r.resolve(echo);
  t.equal(gw.requests.length, 2, 'not cached');
});

t.test('an unreachable or silent gateway resolves anyway', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  gw.hang = true;
  const reasons: string[] = [];
  const slow = openfaasGatewayResolver({
    gatewayUrl: gw.url,
    defaultNamespace: 'openfaas-fn',
    timeoutMs: 50,
    onLookupFailed: (_ref, reason) => reasons.push(reason),
  });
  t.same((await slow.resolve(echo))?.annotations, {});

  // A port nobody listens on: start a server, note its port, close it.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const down = openfaasGatewayResolver({
    gatewayUrl: `http://127.0.0.1:${port}`,
    defaultNamespace: 'openfaas-fn',
    onLookupFailed: (_ref, reason) => reasons.push(reason),
  });
  t.equal((await down.resolve(echo))?.url, `http://127.0.0.1:${port}/function/echo.openfaas-fn`);
  t.equal(await down.list(), undefined);
  t.equal(reasons.length, 2);
  t.ok(
    reasons.every((r) => r.startsWith('gateway unreachable: ')),
    reasons.join('; '),
  );
});

t.test('list() maps /system/functions, and is undefined when the gateway fails', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  const r = openfaasGatewayResolver({ gatewayUrl: gw.url, defaultNamespace: 'openfaas-fn' });
  t.same(await r.list(), [
    { name: 'echo', namespace: 'openfaas-fn', url: `${gw.url}/function/echo.openfaas-fn`, annotations: FUNCTIONS['echo.openfaas-fn'] },
    { name: 'plain', namespace: 'openfaas-fn', url: `${gw.url}/function/plain.openfaas-fn`, annotations: {} },
  ]);
  t.equal(gw.requests.at(-1), '/system/functions?namespace=openfaas-fn');
  t.same(
    (await r.list('team-a'))?.map((fn) => fn.name),
    ['other'],
    "another namespace's, asked of the gateway",
  );
  t.equal(gw.requests.at(-1), '/system/functions?namespace=team-a');
  gw.failWith = { status: 500, body: 'x' };
  t.equal(await r.list(), undefined);
});

t.test('credentials in the gateway URL become basic auth, not part of function URLs', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  const withCreds = gw.url.replace('http://', 'http://admin:s%3Acret@');
  const r = await createResolver({ mode: 'gateway', gatewayUrl: withCreds, defaultNamespace: 'openfaas-fn', urlTemplate: '' });
  t.equal((await r.resolve(echo))?.url, `${gw.url}/function/echo.openfaas-fn`);
  t.same(gw.auth, [`Basic ${Buffer.from('admin:s:cret').toString('base64')}`]);
});

t.test('basic_auth with gateway_invoke: the basic-auth secrets authenticate the lookups; without them a failed lookup is warned about once a minute', async (t) => {
  const gw = await startFakeGateway(t, FUNCTIONS);
  gw.requireAuth = `Basic ${Buffer.from('admin:pw').toString('base64')}`;
  const secrets = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
  t.teardown(() => rm(secrets, { recursive: true, force: true }));
  await writeFile(join(secrets, 'basic-auth-user'), 'admin\n');
  await writeFile(join(secrets, 'basic-auth-password'), 'pw\n');
  const functions = { mode: 'gateway' as const, gatewayUrl: gw.url, defaultNamespace: 'openfaas-fn' };
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = { warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }) } as unknown as Logger;

  const authenticated = configFor('nats://127.0.0.1:1', { functions, security: { basicAuth: true, secretMountPath: secrets } });
  const r = await createResolver(authenticated.functions, await gatewayLookups(authenticated, logger));
  t.same((await r.resolve(echo))?.annotations, FUNCTIONS['echo.openfaas-fn'], 'its annotations, so its queue');

  const anonymous = configFor('nats://127.0.0.1:1', { functions });
  const unauthenticated = await createResolver(anonymous.functions, await gatewayLookups(anonymous, logger));
  for (let i = 0; i < 3; i++) t.same((await unauthenticated.resolve(echo))?.annotations, {}, 'resolved anyway, without its annotations');
  t.equal(warnings.length, 1, 'one warning for the burst');
  t.match(
    warnings[0]!.message,
    /could not read echo\.openfaas-fn from the OpenFaaS gateway, so it runs without its annotations .*gateway answered 401 .*basic-auth-user/,
  );
  t.equal(warnings[0]!.fields['function'], 'echo.openfaas-fn');

  const missing = configFor('nats://127.0.0.1:1', { functions, security: { basicAuth: true, secretMountPath: join(secrets, 'nowhere') } });
  await t.rejects(gatewayLookups(missing, logger), { name: 'ConfigError', message: /basic_auth with gateway_invoke: secret file .*basic-auth-user does not exist/ });
});

t.test('a bad gateway URL is a config error', async (t) => {
  t.throws(() => openfaasGatewayResolver({ gatewayUrl: 'gateway:8080', defaultNamespace: 'd' }), { name: 'ConfigError' });
  t.throws(() => openfaasGatewayResolver({ gatewayUrl: 'not a url', defaultNamespace: 'd' }), { name: 'ConfigError' });
});
