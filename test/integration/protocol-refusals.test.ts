import { once } from 'node:events';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { templateResolver } from '../../src/functions/index.js';
import { startGateway } from '../../src/gateway/start.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { configFor, resolverFor, startStack, startTestGateway } from '../helpers/asyncfn.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { rawRequest, type RawResponse } from '../helpers/raw-http.js';

/**
 * Refusals node's HTTP server and fastify would make on their own, over raw sockets: each one is
 * a status, one line of plain text, and an X-Asyncfn-Error code, like every other refusal.
 */

function expectRefusal(t: Test, res: RawResponse, status: number, code: string, reason: RegExp, what: string): void {
  t.equal(res.status, status, `${what}: ${status}`);
  t.match(res.header('content-type'), /^text\/plain; charset=utf-8$/, `${what}: plain text`);
  t.match(res.body, /^[^\n]+\n$/, `${what}: one line`);
  t.match(res.body, reason, `${what}: says why`);
  t.equal(res.header('x-asyncfn-error'), code, `${what}: X-Asyncfn-Error ${code}`);
}

t.test('node and fastify refusals come in the gateway shape', async (t) => {
  // Large bodies off, so a Content-Length over max_body_size is refused at once (large-payloads.test.ts covers max_large_body_size).
  const stack = await startStack(t, { worker: false, config: { gateway: { maxLargeBodyBytes: 0 } } });
  const url = stack.gateway.url;
  const host = new URL(url).host;
  const send = (lines: string[], body = '') => rawRequest(url, lines.join('\r\n'), body);

  expectRefusal(
    t,
    await send(['CONNECT 127.0.0.1:9 HTTP/1.1', 'Host: 127.0.0.1:9']),
    405,
    'ASYNCFN_ERR_METHOD_NOT_ALLOWED',
    /CONNECT not allowed: the gateway is not a proxy/,
    'CONNECT',
  );
  expectRefusal(t, await send(['GET /healthz HTTP/1.1']), 400, 'ASYNCFN_ERR_BAD_REQUEST', /HTTP\/1\.1 request must carry a Host header/, 'HTTP/1.1 without Host');
  expectRefusal(
    t,
    await send(['POST /async-function/work HTTP/1.1', 'Content-Length: 2'], 'Hi'),
    400,
    'ASYNCFN_ERR_BAD_REQUEST',
    /Host header/,
    'an invocation without Host',
  );
  const http10 = await send(['GET /healthz HTTP/1.0']);
  t.equal(http10.status, 200, 'HTTP/1.0 needs no Host');
  expectRefusal(
    t,
    await send([`GET /function/work/%zz HTTP/1.1`, `Host: ${host}`]),
    400,
    'ASYNCFN_ERR_PATH_REFUSED',
    /malformed percent-encoding "%zz"/,
    '%zz (fastify bad URL)',
  );
  expectRefusal(
    t,
    await send([`GET /nowhere/%zz HTTP/1.1`, `Host: ${host}`]),
    400,
    'ASYNCFN_ERR_PATH_REFUSED',
    /malformed percent-encoding/,
    '%zz outside the invocation routes',
  );
  expectRefusal(
    t,
    await send([`GET /function/work/%ff HTTP/1.1`, `Host: ${host}`]),
    400,
    'ASYNCFN_ERR_BAD_REQUEST',
    /not valid percent-encoded UTF-8/,
    '%ff (not UTF-8)',
  );
  expectRefusal(
    t,
    await send([`POST /async-function/work HTTP/1.1`, `Host: ${host}`, `Content-Length: ${stack.config.gateway.maxBodyBytes + 1}`]),
    413,
    'ASYNCFN_ERR_BODY_TOO_LARGE',
    /exceeds the \d+-byte limit/,
    'body over max_body_size',
  );
  expectRefusal(
    t,
    await send([`GET /healthz HTTP/1.1`, `Host: ${host}`, `X-Big: ${'a'.repeat(20_000)}`]),
    431,
    'ASYNCFN_ERR_HEADERS_TOO_LARGE',
    /exceed the 16384-byte limit/,
    'headers over max_header_size (node)',
  );
  expectRefusal(
    t,
    await send([`GET /\x01 HTTP/1.1`, `Host: ${host}`]),
    400,
    'ASYNCFN_ERR_BAD_REQUEST',
    /^malformed HTTP request/,
    'a control character in the target (node)',
  );
  expectRefusal(
    t,
    await send([`GET / HTTP/1.1`, `Host: ${host}`, 'X-Bad: a\rb']),
    400,
    'ASYNCFN_ERR_BAD_REQUEST',
    /^malformed HTTP request/,
    'a bare CR in a header (node)',
  );
  expectRefusal(
    t,
    await send([`GET /healthz HTTP/1.1`, `Host: ${host}`, 'Expect: 200-ok']),
    417,
    'ASYNCFN_ERR_BAD_REQUEST',
    /cannot meet Expect: 200-ok/,
    'an unmet Expect',
  );
  expectRefusal(
    t,
    await send([`POST /nowhere HTTP/1.1`, `Host: ${host}`, 'Content-Type: application/json', 'Content-Length: 3'], '{x}'),
    400,
    'ASYNCFN_ERR_BAD_REQUEST',
    /Body is not valid JSON/,
    "fastify's body parser",
  );
  expectRefusal(t, await send([`DELETE /nowhere HTTP/1.1`, `Host: ${host}`]), 404, 'ASYNCFN_ERR_NO_ROUTE', /no route for DELETE \/nowhere/, 'no route');

  // The gateway still serves after all of that.
  const health = await request(`${url}/healthz`);
  t.equal(health.statusCode, 200);
  await health.body.dump();
});

t.test('a registry that cannot list answers 501 with a code', async (t) => {
  const nats = await startNatsServer(t);
  const gateway = await startTestGateway(t, configFor(nats.url), templateResolver('http://127.0.0.1:9/{name}'));
  const res = await rawRequest(gateway.url, ['GET /system/functions HTTP/1.1', `Host: ${new URL(gateway.url).host}`, 'Connection: close'].join('\r\n'));
  expectRefusal(t, res, 501, 'ASYNCFN_ERR_CANNOT_LIST', /cannot list functions/, 'GET /system/functions');
});

t.test('a request arriving while the gateway closes gets 503 in the same shape', async (t) => {
  const nats = await startNatsServer(t);
  const config = configFor(nats.url);
  // Not startTestGateway: this test closes the gateway itself.
  const gateway = await startGateway(config, { resolver: resolverFor({}), logger: createLogger(config.log) });
  const { hostname, port } = new URL(gateway.url);
  // A request whose head is half sent keeps its connection busy, so close() does not reap it;
  // the rest of the head arrives once the gateway is closing.
  const socket = connect(Number(port), hostname);
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}:${port}\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(socket, 'close');
  // A round trip on a second connection, opened after those bytes were sent: the server has read
  // them by the time it answers (one event loop, data already in its socket buffer).
  const probe = await request(`${gateway.url}/healthz`, { reset: true });
  await probe.body.dump();
  const closing = gateway.close();
  socket.write('\r\n');
  await ended;
  await closing;
  const text = Buffer.concat(chunks).toString('latin1');
  t.match(text, /^HTTP\/1\.1 503 /, '503');
  t.match(text, /\r\nx-asyncfn-error: ASYNCFN_ERR_SHUTTING_DOWN\r\n/i);
  t.match(text, /\r\nretry-after: 1\r\n/i);
  t.match(text, /\r\n\r\nthe gateway is shutting down\n$/);
});
