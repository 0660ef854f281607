import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t from 'tap';
import { installFrontDoor } from '../../src/gateway/front-door.js';
import { letServerRead, post, startFrontDoor as start } from '../helpers/front-door.js';
import { RawConnection } from '../helpers/raw-connection.js';

/**
 * The front door (src/gateway/front-door.ts) on a real node:http server and real sockets. What
 * the gateway does with a request is not under test here (test/integration/fast-enqueue.test.ts
 * compares the gateway's answers with and without it): the async requests go to a stand-in
 * (test/helpers/front-door.ts) that answers 202 with what it read, at once or when the test
 * releases it, and every other request to node's own listener, which answers 200 with what it read.
 */

t.test('pipelined requests are answered in order, one at a time; the first of another kind hands the connection to node:http', async (t) => {
  const { standIn, door, open } = await start(t);
  standIn.hold = true;
  const c = await open();
  await c.write(post('/async-function/a', 'one') + post('/async-function/b', 'two') + 'GET /other HTTP/1.1\r\nHost: gw\r\n\r\n' + post('/async-function/c', 'three'));
  const first = await standIn.next(1);
  t.equal(first.body, 'one');
  t.equal(standIn.taken.length, 1, 'the second request waits for the first one’s answer');
  first.release();
  t.match(await c.next(), { status: 202, header: Function }, 'first answer');
  (await standIn.next(2)).release();
  const answers = [await c.next(), await c.next(), await c.next()];
  t.same(
    answers.map((a) => [a?.status, a?.header('x-body') ?? a?.body]),
    [
      [202, 'two'],
      [200, 'node GET /other '],
      [200, 'node POST /async-function/c three'],
    ],
    'node:http answers the rest, in order, with every byte',
  );
  t.equal(standIn.taken.length, 2, 'once handed over, the connection’s requests are node’s');
  t.equal(door.handedOver, 1);
  t.equal(door.connections, 0);
});

t.test('a 202 as node:http writes it: status line, the fields given, Date, keep-alive', async (t) => {
  const { open } = await start(t, (server) => (server.keepAliveTimeout = 7_000));
  const c = await open();
  await c.write(post('/async-function/x?a=1', 'hi'));
  const answer = (await c.next())!;
  t.equal(answer.status, 202);
  t.same(
    answer.fields.map(([name]) => name),
    ['x-body', 'x-url', 'content-length', 'date', 'connection', 'keep-alive'],
  );
  t.equal(answer.header('x-url'), '/async-function/x?a=1');
  t.equal(answer.header('x-body'), 'hi');
  t.equal(answer.header('connection'), 'keep-alive');
  t.equal(answer.header('keep-alive'), 'timeout=7');
  t.match(answer.header('date'), /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
});

t.test('a head and a body that arrive in pieces', async (t) => {
  const { standIn, open } = await start(t);
  const c = await open();
  const bytes = post('/async-function/pieces', 'hello world');
  for (const piece of [bytes.slice(0, 7), bytes.slice(7, 30), bytes.slice(30, -6), bytes.slice(-6, -2), bytes.slice(-2)]) await c.write(piece);
  t.equal((await c.next())?.header('x-body'), 'hello world');
  t.equal(standIn.taken.length, 1);
});

t.test('a thousand pipelined requests in one write: a thousand answers, in order', async (t) => {
  const { open } = await start(t);
  const c = await open();
  let bytes = '';
  for (let i = 0; i < 1_000; i++) bytes += post(`/async-function/n`, String(i));
  await c.write(bytes);
  const bodies: string[] = [];
  for (let i = 0; i < 1_000; i++) bodies.push((await c.next())!.header('x-body')!);
  t.same(
    bodies,
    Array.from({ length: 1_000 }, (_, i) => String(i)),
  );
});

t.test('a client that does not read: reading pauses once its answers wait for the kernel, and resumes when it reads them', async (t) => {
  const { server, standIn, open } = await start(t);
  const sockets: Socket[] = [];
  server.on('connection', (socket: Socket) => sockets.push(socket));
  standIn.maxBody = 2_000;
  const bodyOf = (n: number): string => `${n}:${'x'.repeat(1_000)}`;
  const c = await open();
  await c.write(post('/async-function/x', bodyOf(0)));
  t.equal((await c.next())?.header('x-body'), bodyOf(0));
  const serverSocket = sockets[0]!;
  c.socket.pause();
  const perWrite = 1_000;
  let sent = 1;
  // Bounded: the kernel's buffers on loopback hold a few MiB, a few thousand of these answers.
  for (let round = 0; round < 200 && !serverSocket.isPaused(); round++) {
    let bytes = '';
    for (let i = 0; i < perWrite; i++) bytes += post('/async-function/x', bodyOf(sent + i));
    sent += perWrite;
    const paused = once(serverSocket, 'pause');
    await c.write(bytes);
    await Promise.race([standIn.next(sent), paused]);
    await new Promise(setImmediate); // the batch that writes the answers
  }
  t.ok(serverSocket.writableNeedDrain, 'the answers wait for the kernel');
  t.ok(serverSocket.isPaused(), 'reading paused');
  const drained = once(serverSocket, 'drain');
  c.socket.resume();
  const bodies: string[] = [];
  for (let i = 1; i < sent; i++) bodies.push((await c.next())!.header('x-body')!);
  t.same(
    bodies,
    Array.from({ length: sent - 1 }, (_, i) => bodyOf(i + 1)),
    'every answer, in order',
  );
  await drained;
  t.notOk(serverSocket.isPaused(), 'reading resumed');
});

t.test('what the front door does not take goes to node:http with its bytes: a large body, a chunked one, another method', async (t) => {
  const { standIn, door, open } = await start(t);
  standIn.maxBody = 4;
  const large = await open();
  await large.write(post('/async-function/x', 'too large'));
  t.equal((await large.next())?.body, 'node POST /async-function/x too large');
  const chunked = await open();
  await chunked.write('POST /async-function/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  t.equal((await chunked.next())?.body, 'node POST /async-function/x abc');
  const bad = await open();
  await bad.write('POST /async-function/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab');
  t.equal((await bad.next())?.status, 400, "node's parser refuses two Content-Lengths");
  t.equal(door.handedOver, 3);
  t.equal(standIn.taken.length, 0);
});

t.test('read_timeout: a head or a body not all in within it is answered 408 and closed', async (t) => {
  const { open } = await start(t, (server) => {
    server.requestTimeout = 1_000;
    server.headersTimeout = 1_000;
  });
  const head = await open();
  await head.write('POST /async-function/x HTTP/1.1\r\nHost: gw\r\n');
  const body = await open();
  await body.write('POST /async-function/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nhalf');
  for (const [what, c] of [
    ['head', head],
    ['body', body],
  ] as const) {
    const answer = await c.next();
    t.equal(answer?.status, 408, what);
    t.equal(answer?.header('x-asyncfn-error'), 'ASYNCFN_ERR_REQUEST_TIMEOUT');
    await c.closed;
  }
});

t.test('the keep-alive timeout closes a connection idle between requests', async (t) => {
  const { open } = await start(t, (server) => (server.keepAliveTimeout = 1_000));
  const c = await open();
  await c.write(post('/async-function/x', 'a'));
  t.equal((await c.next())?.status, 202);
  await c.closed;
  t.equal(c.leftover, '', 'closed without a word');
});

t.test('between requests the keep-alive timeout stands in for write_timeout, and closes no sooner than its answers say', async (t) => {
  const { open } = await start(t, (server) => {
    server.keepAliveTimeout = 2_000;
    server.setTimeout(1_000);
  });
  const c = await open();
  await c.write(post('/async-function/x', 'a'));
  const answer = await c.next();
  const answeredAt = performance.now();
  t.equal(answer?.header('keep-alive'), 'timeout=2');
  await c.closed;
  // A lower bound, not a speed: closing before the time the answer named is the defect.
  t.ok(performance.now() - answeredAt >= 2_000, 'closed once its keep-alive ran out, not at write_timeout');
});

t.test('empty lines after a body are skipped, as node skips them: the next request is the front door’s, a FIN after them ends it cleanly', async (t) => {
  const { standIn, door, open } = await start(t);
  const c = await open();
  await c.write(`${post('/async-function/x', 'one')}\r\n`);
  t.equal((await c.next())?.header('x-body'), 'one');
  await c.write(`\r\n${post('/async-function/x', 'two')}\r\n`);
  t.equal((await c.next())?.header('x-body'), 'two');
  t.equal(door.handedOver, 0, 'not handed to node:http');
  t.equal(standIn.taken.length, 2);
  c.socket.end();
  await c.closed;
  t.equal(c.leftover, '', 'closed without a word (no 400)');
  // The FIN with the empty line, read while the request before it is answered.
  standIn.hold = true;
  const d = await open();
  await d.write(`${post('/async-function/x', 'three')}\r\n`);
  d.socket.end();
  (await standIn.next(3)).release();
  t.equal((await d.next())?.header('x-body'), 'three');
  await d.closed;
  t.equal(d.leftover, '', 'closed after the answer, without a word');
});

t.test('an unfinished head that cannot be the async request is handed to node:http at once, not held until read_timeout', async (t) => {
  const { door, open } = await start(t);
  for (const bytes of ['POST /async-function/x HTTP/1.1\nHost: gw\n', 'GET /other HTTP/1.1\r\nHost: gw\r\n', '\x00']) {
    const c = await open();
    const handedOver = door.handedOver;
    await c.write(bytes);
    await letServerRead();
    t.equal(door.handedOver, handedOver + 1, `${JSON.stringify(bytes)}: handed over`);
    if (bytes.startsWith('GET')) {
      await c.write('\r\n');
      t.equal((await c.next())?.body, 'node GET /other ', 'node serves the rest of it');
    } else {
      t.equal((await c.next())?.status, 400, `${JSON.stringify(bytes)}: node refuses it`);
    }
  }
});

t.test('write_timeout (server.timeout): a connection with no traffic either way is closed', async (t) => {
  const { open } = await start(t, (server) => {
    server.keepAliveTimeout = 600_000;
    server.setTimeout(500);
  });
  const c = await open();
  await c.closed;
  t.pass('closed');
});

t.test('write_timeout: a connection that keeps talking stays open past it; silent within a request, it is closed', async (t) => {
  const { open } = await start(t, (server) => {
    server.keepAliveTimeout = 600_000;
    server.setTimeout(1_000);
  });
  const c = await open();
  let closed = false;
  void c.closed.then(() => (closed = true));
  // Requests 300 ms apart for three times write_timeout: each read and each answer is traffic.
  for (let i = 0; i < 10; i++) {
    await c.write(post('/async-function/x', String(i)));
    t.equal((await c.next())?.status, 202, `request ${i} answered`);
    t.notOk(closed, `still open after ${i + 1} requests`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  // Idle between requests, the keep-alive timeout (10 minutes here) applies instead: a head begun and left.
  await c.write('POST /async-function/x HTTP/1.1\r\n');
  await c.closed;
  t.pass('closed once silent');
});

t.test('shutdown: idle connections close at once, a busy one after its answer, with Connection: close', async (t) => {
  const { server, standIn, open } = await start(t);
  const idle = await open();
  await idle.write(post('/async-function/x', 'a'));
  t.equal((await idle.next())?.status, 202);
  standIn.hold = true;
  const busy = await open();
  await busy.write(post('/async-function/x', 'b'));
  const held = await standIn.next(2);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  await idle.closed;
  t.pass('the idle connection is closed');
  held.release();
  const answer = await busy.next();
  t.equal(answer?.status, 202);
  t.equal(answer?.header('connection'), 'close');
  await busy.closed;
  await closed;
  t.pass('the server closed');
});

t.test('shutdown: a request read behind the one being answered goes to node:http (where the gateway answers 503)', async (t) => {
  const { server, standIn, open } = await start(t);
  standIn.hold = true;
  const busy = await open();
  await busy.write(post('/async-function/x', 'b') + post('/async-function/x', 'c'));
  const held = await standIn.next(1);
  // What the gateway's accepts() does once it is closing: it takes nothing more.
  standIn.maxBody = -1;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  held.release();
  t.equal((await busy.next())?.status, 202);
  t.equal((await busy.next())?.body, 'node POST /async-function/x c', 'the next one is answered, by node:http');
  t.equal(standIn.taken.length, 1);
  busy.socket.destroy();
  await closed;
});

t.test("the peer's FIN: after a whole request, its answer and then close; within a head, a 400", async (t) => {
  const { open, standIn } = await start(t);
  const whole = await open();
  await whole.write(post('/async-function/x', 'a'));
  whole.socket.end();
  t.equal((await whole.next())?.status, 202);
  await whole.closed;
  // Requests pipelined before the FIN are all answered, even when the FIN is read while the first
  // is still being answered; then the unfinished head is refused and the connection closes.
  standIn.hold = true;
  const pipelined = await open();
  await pipelined.write(post('/async-function/x', 'one') + post('/async-function/x', 'two') + 'POST /async-function/x HTTP/1.1\r\nHost: gw\r\n');
  pipelined.socket.end();
  const first = await standIn.next(2);
  await letServerRead(); // the FIN, before the answer
  first.release();
  const second = await Promise.race([standIn.next(3), pipelined.closed.then(() => undefined)]);
  t.ok(second, 'the second request is taken, the connection still open');
  second?.release();
  const answers = [await pipelined.next(), await pipelined.next(), await pipelined.next()];
  t.same(
    answers.map((a) => [a?.status, a?.header('x-body') ?? a?.header('x-asyncfn-error')]),
    [
      [202, 'one'],
      [202, 'two'],
      [400, 'ASYNCFN_ERR_BAD_REQUEST'],
    ],
    'both answered, then the unfinished head refused',
  );
  await pipelined.closed;
  const partial = await open();
  await partial.write('POST /async-function/x HTTP/1.1\r\nHost: gw\r\n');
  partial.socket.end();
  t.equal((await partial.next())?.status, 400);
  await partial.closed;
});

t.test("after the peer's FIN, a request of another kind goes to node:http with the end, and a cut body is not answered", async (t) => {
  const { standIn, open } = await start(t);
  standIn.hold = true;
  const other = await open();
  await other.write(post('/async-function/x', 'one') + 'GET /other HTTP/1.1\r\nHost: gw\r\n\r\n');
  other.socket.end();
  const held = await standIn.next(1);
  await letServerRead(); // the FIN, before the answer
  held.release();
  t.equal((await other.next())?.status, 202);
  // node:http ends a connection whose peer has ended (server.httpAllowHalfOpen is false): it
  // closes, with or without an answer to the GET, rather than wait for more of it.
  await other.closed;
  t.pass('closed by node:http');

  const cut = await open();
  await cut.write(post('/async-function/x', 'one') + 'POST /async-function/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nhalf');
  cut.socket.end();
  const first = await standIn.next(2);
  await letServerRead();
  first.release();
  t.equal((await cut.next())?.status, 202);
  await cut.closed;
  t.equal(cut.leftover, '', 'the request cut short is not answered');
  t.equal(standIn.taken.length, 2);
});

t.test('until the routes are ready every connection goes to node:http', async (t) => {
  const server = createServer((req, res) => res.end('node'));
  const door = installFrontDoor(server, { enqueue: () => undefined, maxHeaderBytes: 16_384 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const c = await RawConnection.open(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await c.write(post('/async-function/x', 'a'));
  t.equal((await c.next())?.body, 'node');
  t.equal(door.handedOver, 1);
});
