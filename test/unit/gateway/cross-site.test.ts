import fastify from 'fastify';
import t from 'tap';
import { installCrossSiteGuard } from '../../../src/gateway/auth/index.js';
import { installErrorHandlers } from '../../../src/gateway/http-errors.js';
import { createLogger } from '../../../src/telemetry/logger.js';

/** A gateway-shaped app: an admin route that changes state, one that reads, and an invoke route. */
async function app() {
  const server = fastify();
  installErrorHandlers(server, createLogger({ level: 'silent', format: 'json' }), 1024);
  installCrossSiteGuard(server);
  server.post('/system/invocations/cancel', async () => ({ cancelled: 1 }));
  server.delete('/async-function/*', async () => ({ cancelled: 1 }));
  server.get('/system/queues', async () => ({ queues: [] }));
  server.post('/async-function/*', async (_req, reply) => reply.code(202).send());
  await server.ready();
  return server;
}

t.test('a state-changing admin request a browser sends for another site is refused 403', async (t) => {
  const server = await app();
  t.teardown(() => server.close());
  const cases: Array<[string, Record<string, string>]> = [
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site (another port of the same host)', { 'sec-fetch-site': 'same-site' }],
    ['an Origin of another host', { origin: 'http://evil.example' }],
    ['an Origin of another port', { origin: 'http://gw.test:9999' }],
    ['Origin: null (a sandboxed page)', { origin: 'null' }],
  ];
  for (const [what, headers] of cases) {
    for (const [method, url] of [
      ['POST', '/system/invocations/cancel?all=true'],
      ['DELETE', '/async-function/some-call-id'],
    ] as const) {
      const res = await server.inject({ method, url, headers: { host: 'gw.test:8080', ...headers } });
      t.equal(res.statusCode, 403, `${what}: ${method} ${url}`);
      t.equal(res.headers['x-asyncfn-error'], 'ASYNCFN_ERR_CROSS_SITE');
      t.match(res.body, /a page of another site/);
    }
  }
});

t.test('the console (same origin), clients that are no web page, reads and invocations are not refused', async (t) => {
  const server = await app();
  t.teardown(() => server.close());
  const host = { host: 'gw.test:8080' };
  const allowed: Array<[string, 'GET' | 'POST' | 'DELETE', string, Record<string, string>]> = [
    ['the console', 'POST', '/system/invocations/cancel', { 'sec-fetch-site': 'same-origin', origin: 'http://gw.test:8080' }],
    ['typed in the address bar', 'POST', '/system/invocations/cancel', { 'sec-fetch-site': 'none' }],
    ['an old browser on the same origin', 'DELETE', '/async-function/x', { origin: 'http://gw.test:8080' }],
    ['curl', 'POST', '/system/invocations/cancel', {}],
    ['a cross-site read', 'GET', '/system/queues', { 'sec-fetch-site': 'cross-site' }],
    ['a cross-site invocation (webhooks come from anywhere)', 'POST', '/async-function/echo', { 'sec-fetch-site': 'cross-site', origin: 'http://other.example' }],
  ];
  for (const [what, method, url, headers] of allowed) {
    const res = await server.inject({ method, url, headers: { ...host, ...headers } });
    t.not(res.statusCode, 403, what);
  }
});
