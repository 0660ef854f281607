import fastify from 'fastify';
import t from 'tap';
import { bearerAuthenticator, installAuth, NO_AUTH, type GatewayAuth } from '../../../src/gateway/auth/index.js';
import { forwardedHeaders } from '../../../src/gateway/forwarded-headers.js';
import { isReservedHeader } from '../../../src/http/headers.js';
import { installHeaderCountLimit } from '../../../src/gateway/header-limits.js';

/** A gateway-shaped app whose invocation route answers with the headers it would forward. */
async function appWith(auth: GatewayAuth) {
  const app = fastify();
  installHeaderCountLimit(app, { maxHeaderCount: 20, maxHeaderBytes: 16_384 });
  installAuth(app, auth);
  app.all('/function/*', async (request) => forwardedHeaders(request));
  app.get('/system/functions', async () => []);
  app.get('/healthz', async () => 'OK');
  await app.ready();
  t.teardown(() => app.close());
  return app;
}

const CALLER = {
  authorization: 'Bearer fn-token',
  'asyncfn-call-id': 'injected',
  'Asyncfn-H-X-Smuggled': '1',
  'nats-msg-id': 'dup',
  'nats-expected-stream': 'other',
  connection: 'keep-alive, x-named',
  'x-named': 'hop',
  'x-asyncfn-like': 'kept: only the exact prefixes are reserved',
  'x-keep': 'yes',
};

t.test('reserved namespaces are Asyncfn-* and Nats-*, case-insensitively', async (t) => {
  for (const name of ['Asyncfn-Call-Id', 'asyncfn-h-x', 'NATS-MSG-ID', 'Nats-Expected-Stream']) t.ok(isReservedHeader(name), name);
  for (const name of ['x-asyncfn-error', 'x-nats', 'natsy', 'asyncfn']) t.notOk(isReservedHeader(name), name);
});

t.test('without invoke auth, Authorization is forwarded; reserved and hop-by-hop headers never are', async (t) => {
  const app = await appWith(NO_AUTH);
  // Twice: the names are kept with what was decided for them, which must hold the second time too.
  await app.inject({ method: 'GET', url: '/function/work', headers: CALLER });
  const res = await app.inject({ method: 'GET', url: '/function/work', headers: CALLER });
  t.equal(res.statusCode, 200);
  const forwarded = Object.fromEntries(res.json<Array<[string, string]>>());
  t.equal(forwarded.authorization, 'Bearer fn-token');
  t.equal(forwarded['x-keep'], 'yes');
  t.equal(forwarded['x-asyncfn-like'], CALLER['x-asyncfn-like']);
  for (const name of ['asyncfn-call-id', 'asyncfn-h-x-smuggled', 'nats-msg-id', 'nats-expected-stream', 'connection', 'x-named']) {
    t.equal(forwarded[name], undefined, `${name} dropped`);
  }
});

t.test('invoke auth consumes Authorization: it is not forwarded', async (t) => {
  const app = await appWith({ invoke: bearerAuthenticator(['fn-token']) });
  const res = await app.inject({ method: 'POST', url: '/function/work', headers: CALLER });
  t.equal(res.statusCode, 200);
  const forwarded = Object.fromEntries(res.json<Array<[string, string]>>());
  t.equal(forwarded.authorization, undefined);
  t.equal(forwarded['x-keep'], 'yes');

  const refused = await app.inject({ method: 'POST', url: '/function/work', headers: { authorization: 'Bearer wrong' } });
  t.equal(refused.statusCode, 401);
  t.equal(refused.headers['www-authenticate'], 'Bearer realm="asyncfn", error="invalid_token"');
  t.equal((await app.inject({ method: 'GET', url: '/system/functions' })).statusCode, 200, 'no admin auth configured: open');
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
});

t.test('the count limit runs before auth', async (t) => {
  const app = await appWith({ invoke: bearerAuthenticator(['fn-token']), admin: bearerAuthenticator(['admin']) });
  const headers = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`x-h-${i}`, String(i)]));
  const res = await app.inject({ method: 'GET', url: '/system/functions', headers });
  t.equal(res.statusCode, 431);
  t.equal(res.headers['x-asyncfn-error'], 'ASYNCFN_ERR_HEADERS_TOO_LARGE');
  t.equal(res.body, 'request has more than 20 header fields (max_header_count)\n');
});
