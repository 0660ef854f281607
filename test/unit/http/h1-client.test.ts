import { EventEmitter, once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import t, { type Test } from 'tap';
import { CallbackRefusedError, createTargetGuard } from '../../../src/callback/target-guard.js';
import { createHttpClient, type HttpClientOptions, type HttpDispatcher } from '../../../src/http/client.js';
import { exchange, type ExchangeResponse } from '../../../src/http/exchange.js';
import { listen } from '../../helpers/http-servers.js';
import { startRawHttpServer } from '../../helpers/raw-http.js';
import { TLS_FIXTURES } from '../../helpers/nats-server.js';

/**
 * asyncfn's own HTTP/1.1 client (src/http/h1/), through `exchange()` as the worker uses it, against
 * real servers: node's HTTP server, and raw TCP servers for answers node would not write. The
 * exchange's own contract is tested with both dispatchers in exchange.test.ts.
 */

function client(t: Test, opts: Partial<HttpClientOptions> = {}): HttpDispatcher {
  const dispatcher = createHttpClient({ connectionsPerOrigin: 10, ...opts });
  t.teardown(() => dispatcher.destroy());
  return dispatcher;
}

function post(dispatcher: HttpDispatcher, url: string, body = 'x', headers: Record<string, string> = {}): Promise<ExchangeResponse> {
  return exchange(dispatcher, { url, method: 'POST', headers, body: new TextEncoder().encode(body) }, { timeoutMs: 10_000 });
}

const text = (response: ExchangeResponse) => Buffer.from(response.body).toString();

/** node's HTTP server; counts its connections and the requests each carried. */
async function httpServer(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const sockets: Socket[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      (req as IncomingMessage & { body?: string }).body = Buffer.concat(chunks).toString();
      handler(req, res);
    });
  });
  server.on('connection', (socket: Socket) => sockets.push(socket));
  const url = await listen(t, server);
  return { url, server, connections: () => sockets.length, sockets: () => sockets };
}

t.test('keep-alive: sequential requests share one connection; the request is sent as given', async (t) => {
  const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
  const server = await httpServer(t, (req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: (req as IncomingMessage & { body: string }).body });
    res.end(`answer ${seen.length}`);
  });
  const http = client(t);
  for (let i = 1; i <= 3; i++) t.equal(text(await post(http, `${server.url}/fn/${i}?q=${i}`, `body ${i}`, { 'x-call-id': `c${i}` })), `answer ${i}`);
  t.equal(server.connections(), 1, 'one connection for the three');
  t.same(
    seen.map((r) => [r.method, r.url, r.headers['x-call-id'], r.headers['content-length'], r.body]),
    [1, 2, 3].map((i) => ['POST', `/fn/${i}?q=${i}`, `c${i}`, String(`body ${i}`.length), `body ${i}`]),
  );
  t.equal(seen[0]!.headers.host, new URL(server.url).host);
  const empty = await exchange(http, { url: server.url, method: 'GET', headers: { 'x-many': ['a', 'b'] }, body: null }, { timeoutMs: 10_000 });
  t.equal(empty.status, 200);
  t.equal(seen[3]!.headers['content-length'], undefined, 'a GET without a body has no Content-Length');
  t.equal(seen[3]!.headers['x-many'], 'a, b', 'a repeated request header is sent once per value');
  const big = 'b'.repeat(100_000);
  t.equal(text(await post(http, server.url, big)), 'answer 5');
  t.equal(seen[4]!.body, big, 'a body larger than the copy limit is written beside its head');
});

t.test("node's chunked answers, Connection: close, and a Keep-Alive hint too short to keep the connection", async (t) => {
  const chunked = await httpServer(t, (_req, res) => {
    res.write('one, ');
    res.write('two, ');
    res.end('three');
  });
  const http = client(t);
  t.equal(text(await post(http, chunked.url)), 'one, two, three');
  t.equal(text(await post(http, chunked.url)), 'one, two, three');
  t.equal(chunked.connections(), 1, 'a chunked answer leaves the connection reusable');

  const closing = await httpServer(t, (_req, res) => {
    res.setHeader('connection', 'close');
    res.end('bye');
  });
  t.equal(text(await post(http, closing.url)), 'bye');
  t.equal(text(await post(http, closing.url)), 'bye');
  t.equal(closing.connections(), 2, 'Connection: close is honoured');

  const short = await httpServer(t, (_req, res) => res.end('short'));
  short.server.keepAliveTimeout = 1000; // node answers Keep-Alive: timeout=1
  t.equal(text(await post(http, short.url)), 'short');
  t.equal(text(await post(http, short.url)), 'short');
  t.equal(short.connections(), 2, 'kept no longer than the server hinted, less a second: not at all');
});

t.test('answers node would not write: 1xx first, a body that runs to the close', async (t) => {
  const informational = await startRawHttpServer(t, (socket) =>
    socket.write('HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\ndone'),
  );
  const response = await post(client(t), informational.url);
  t.equal(response.status, 200);
  t.equal(response.headers['content-type'], 'text/plain');
  t.equal(text(response), 'done');

  const untilClose = await startRawHttpServer(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\n\r\nall ');
    socket.end('of it');
  });
  t.equal(text(await post(client(t), untilClose.url)), 'all of it');
});

t.test('a server that breaks off, or answers what is not HTTP, fails the exchange with a clear error', async (t) => {
  const silent = await startRawHttpServer(t, (socket) => socket.end());
  await t.rejects(post(client(t), silent.url), { code: 'ASYNCFN_ERR_HTTP_CLOSED', message: /without answering/ });

  const cut = await startRawHttpServer(t, (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this'));
  await t.rejects(post(client(t), cut.url), { code: 'ASYNCFN_ERR_HTTP_CLOSED', message: /before the response was complete/ });

  const garbage = await startRawHttpServer(t, (socket) => socket.write('SSH-2.0-OpenSSH_9.6\r\n\r\n'));
  await t.rejects(post(client(t), garbage.url), { code: 'ASYNCFN_ERR_HTTP_RESPONSE', message: /not an HTTP\/1.x status line/ });

  const lying = await startRawHttpServer(t, (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello'));
  await t.rejects(post(client(t), lying.url), { code: 'ASYNCFN_ERR_HTTP_RESPONSE', message: /disagree/ });

  // Bytes past the answer: the answer stands, the connection is not used again.
  const extra = await startRawHttpServer(t, (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA'));
  const http = client(t);
  t.equal(text(await post(http, extra.url)), 'ok');
  t.equal(text(await post(http, extra.url)), 'ok');
  t.equal(extra.connections(), 2, 'a connection that sent more than its answer is dropped');
});

t.test('at most connectionsPerOrigin connections; the rest wait their turn', async (t) => {
  const held: ServerResponse[] = [];
  const arrived = new EventTarget();
  const server = await httpServer(t, (_req, res) => {
    held.push(res);
    arrived.dispatchEvent(new Event('request'));
  });
  const http = client(t, { connectionsPerOrigin: 2 });
  const pending = [1, 2, 3, 4, 5].map((i) => post(http, `${server.url}/${i}`));
  while (held.length < 2) await once(arrived, 'request');
  t.equal(server.connections(), 2);
  for (let answered = 0; answered < 5; answered++) {
    while (held.length <= answered) await once(arrived, 'request');
    held[answered]!.end(`#${answered}`);
  }
  t.same((await Promise.all(pending)).map(text).sort(), ['#0', '#1', '#2', '#3', '#4']);
  t.equal(server.connections(), 2, 'five requests over two connections');
});

t.test('the callback guard holds on this path too: refused before any byte is sent', async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('ok'));
  const port = new URL(server.url).port;
  const guarded = client(t, { connectGuard: createTargetGuard([]) });
  for (const host of ['127.0.0.1', 'localhost']) await t.rejects(post(guarded, `http://${host}:${port}/`), CallbackRefusedError, `${host} refused`);
  t.equal(server.connections(), 0, 'no connection was made');
  const allowed = client(t, { connectGuard: createTargetGuard(['127.0.0.0/8']) });
  t.equal(text(await post(allowed, `http://127.0.0.1:${port}/`)), 'ok');
  const byName = client(t, { connectGuard: createTargetGuard(['localhost']) });
  t.equal(text(await post(byName, `http://localhost:${port}/`)), 'ok', 'a name the allowlist names is looked up through the guard and connected');
});

t.test('deferWrite: requests are written when their batch runs, all of it together; one aborted before that is never written', async (t) => {
  const seen: string[] = [];
  const server = await httpServer(t, (req, res) => {
    seen.push(req.url!);
    res.end('ok');
  });
  const batch: Array<() => void> = [];
  const queued = new EventEmitter();
  const http = client(t, {
    deferWrite: (write) => {
      batch.push(write);
      queued.emit('queued');
    },
  });
  const aborted = new AbortController();
  const kept = [post(http, `${server.url}/one`), post(http, `${server.url}/two`)];
  const cut = exchange(
    http,
    { url: `${server.url}/cut`, method: 'POST', headers: {}, body: new TextEncoder().encode('x') },
    { timeoutMs: 10_000, signal: aborted.signal },
  );
  // Each is queued once its connection is open.
  while (batch.length < 3) await once(queued, 'queued');
  // A whole exchange through another client: the server has read what was written before it.
  t.equal(text(await post(client(t), `${server.url}/other`)), 'ok');
  t.same(seen, ['/other'], 'nothing of the three is written before their batch runs');
  aborted.abort(new Error('left invoking'));
  await t.rejects(cut, { message: 'left invoking' });
  for (const write of batch.splice(0)) write();
  t.same((await Promise.all(kept)).map(text), ['ok', 'ok']);
  t.equal(text(await post(client(t), `${server.url}/after`)), 'ok');
  t.same(seen.sort(), ['/after', '/one', '/other', '/two'], 'the batch wrote the two, not the one aborted before it ran');
  t.equal(server.connections(), 5, 'one connection each');
});

t.test('destroy fails what is in flight and refuses what comes after', async (t) => {
  const server = await httpServer(t, () => undefined);
  const http = createHttpClient({ connectionsPerOrigin: 1 });
  const first = post(http, server.url);
  const waiting = post(http, server.url);
  while (server.connections() < 1) await once(server.server, 'connection');
  const failed = Promise.all([t.rejects(first, { code: 'ASYNCFN_ERR_HTTP_DESTROYED' }), t.rejects(waiting, { code: 'ASYNCFN_ERR_HTTP_DESTROYED' })]);
  await http.destroy();
  await failed;
  await t.rejects(post(http, server.url), { code: 'ASYNCFN_ERR_HTTP_DESTROYED' });
});

t.test('close serves what is in flight and waiting, and resolves only once their connection is closed', async (t) => {
  const held: ServerResponse[] = [];
  const arrived = new EventEmitter();
  const server = await httpServer(t, (_req, res) => {
    held.push(res);
    arrived.emit('request');
  });
  const http = client(t, { connectionsPerOrigin: 1 });
  const first = post(http, server.url);
  const waiting = post(http, server.url);
  if (held.length < 1) await once(arrived, 'request');
  const socketClosed = once(server.sockets()[0]!, 'close');
  let closed = false;
  const closing = http.close().then(() => (closed = true));
  for (let turn = 0; turn < 5; turn++) await new Promise(setImmediate);
  t.notOk(closed, 'not resolved while a request is in flight');
  await t.rejects(post(http, server.url), { code: 'ASYNCFN_ERR_HTTP_DESTROYED' }, 'a request after close is refused');
  held[0]!.end('first');
  t.equal(text(await first), 'first', 'the request in flight is answered');
  if (held.length < 2) await once(arrived, 'request');
  t.notOk(closed, 'not resolved while the waiting request is served');
  held[1]!.end('second');
  t.equal(text(await waiting), 'second', 'the waiting request is served');
  await closing;
  await socketClosed;
  t.equal(server.connections(), 1, 'both went over the one connection');
});

t.test('closed before undici was needed, what it would have taken is refused as a plain request is', async (t) => {
  const server = await httpServer(t, (_req, res) => res.end('ok'));
  async function* body() {
    yield new TextEncoder().encode('streamed');
  }
  for (const end of ['close', 'destroy'] as const) {
    const http = createHttpClient({ connectionsPerOrigin: 1 });
    await http[end]();
    await t.rejects(
      exchange(http, { url: server.url, method: 'POST', headers: {}, body: body() }, { timeoutMs: 10_000 }),
      { code: 'ASYNCFN_ERR_HTTP_DESTROYED' },
      `after ${end}`,
    );
    await t.rejects(post(http, server.url), { code: 'ASYNCFN_ERR_HTTP_DESTROYED' }, `a plain request after ${end}`);
  }
});

t.test('an https request goes to undici, made on first use, which verifies the server', async (t) => {
  const [cert, key] = await Promise.all([readFile(TLS_FIXTURES.serverCert), readFile(TLS_FIXTURES.serverKey)]);
  const url = `${await listen(
    t,
    createHttpsServer({ cert, key }, (_req, res) => res.end('ok')),
  )}/`;
  // This process does not trust the fixture CA (test/integration/https-calls.test.ts calls one that does).
  await t.rejects(post(client(t), url), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'the TLS handshake checked the certificate');
});

t.test('what this client does not take goes to undici: a streamed body, a connection-level header', async (t) => {
  const seen: string[] = [];
  const server = await httpServer(t, (req, res) => {
    seen.push((req as IncomingMessage & { body: string }).body);
    res.end('ok');
  });
  const http = client(t);
  async function* body() {
    yield new TextEncoder().encode('streamed ');
    yield new TextEncoder().encode('body');
  }
  const streamed = await exchange(http, { url: server.url, method: 'POST', headers: {}, body: body() }, { timeoutMs: 10_000 });
  t.equal(streamed.status, 200);
  t.equal(seen[0], 'streamed body');
  // undici refuses a Transfer-Encoding header itself, with its own error, as before this client.
  await t.rejects(post(http, server.url, 'x', { 'transfer-encoding': 'chunked' }), { code: 'UND_ERR_INVALID_ARG' });
});
