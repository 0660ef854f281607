import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { CallbackRefusedError, createTargetGuard } from '../../../src/callback/target-guard.js';
import { upCallbackPolicy } from '../../../src/cli/up-binding.js';
import { createHttpClient, type HttpDispatcher } from '../../../src/http/client.js';
import { requestVia } from '../../../src/http/undici-parts.js';

/** A loopback HTTP server on both IPv4 and IPv6 loopback (same port where possible) counting its requests. */
async function startServer(t: Test): Promise<{ port: number; requests: () => number }> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests += 1;
    res.end('ok');
  });
  server.listen(0, '::');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, requests: () => requests };
}

function client(t: Test, allow?: readonly string[]): HttpDispatcher {
  const dispatcher = createHttpClient({ connectionsPerOrigin: 2, ...(allow ? { connectGuard: createTargetGuard(allow) } : {}) });
  t.teardown(() => dispatcher.destroy());
  return dispatcher;
}

/** A GET through undici's request API, which the client hands to undici's Agent (and so to the guarded connector). */
async function get(url: string, dispatcher: HttpDispatcher): Promise<number> {
  const res = await requestVia(dispatcher, url, { method: 'GET' });
  await res.body.dump();
  return res.statusCode;
}

t.test('a guarded pool refuses loopback literals and names before any byte is sent', async (t) => {
  const server = await startServer(t);
  const guarded = client(t, []);
  for (const host of ['127.0.0.1', '[::1]', '[::ffff:127.0.0.1]', 'localhost', '2130706433']) {
    const url = `http://${host}:${server.port}/`;
    await t.rejects(get(url, guarded), CallbackRefusedError, `${url} refused`);
  }
  t.equal(server.requests(), 0, 'the server saw no request');
});

t.test('the allowlist opens the guarded pool; an unguarded pool (function calls) goes anywhere', async (t) => {
  const server = await startServer(t);
  t.equal(await get(`http://127.0.0.1:${server.port}/`, client(t, ['127.0.0.0/8'])), 200);
  t.equal(await get(`http://[::1]:${server.port}/`, client(t, ['::1'])), 200);
  t.equal(await get(`http://localhost:${server.port}/`, client(t, ['localhost'])), 200);
  t.equal(await get(`http://127.0.0.1:${server.port}/`, client(t)), 200);
  t.equal(server.requests(), 4);
});

t.test('asyncfn up allows loopback unless callback_allow says otherwise', async (t) => {
  const server = await startServer(t);
  const up = client(t, upCallbackPolicy('127.0.0.1', []).callbackAllow);
  t.equal(await get(`http://127.0.0.1:${server.port}/`, up), 200, "the README's nc -l 8888 example keeps working");
  t.equal(await get(`http://localhost:${server.port}/`, up), 200);
  t.same(upCallbackPolicy('127.0.0.1', ['hooks.internal']).callbackAllow, ['hooks.internal'], 'an explicit list is kept as it is');
  await t.rejects(get(`http://127.0.0.1:${server.port}/`, client(t, upCallbackPolicy('127.0.0.1', ['hooks.internal']).callbackAllow)), CallbackRefusedError);
});
