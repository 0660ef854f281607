import t, { type Test } from 'tap';
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { Worker } from 'node:worker_threads';
import { Agent, Dispatcher } from 'undici';
import { createHttpClient, type HttpDispatcher } from '../../../src/http/client.js';
import { deferWrite } from '../../../src/queue/write-batch.js';
import { exchange, ExchangeTimeoutError, originAndPath } from '../../../src/http/exchange.js';
import { listen } from '../../helpers/http-servers.js';
import { blockFor } from '../../helpers/blocked-loop.js';

/** A real server whose requests the test answers (or holds) itself. */
async function heldServer(t: Test) {
  const held: Array<{ url: string; body: string; res: ServerResponse }> = [];
  const arrived = new EventTarget();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      held.push({ url: req.url ?? '', body: Buffer.concat(chunks).toString(), res });
      arrived.dispatchEvent(new Event('request'));
    });
  });
  const url = await listen(t, server);
  const nextRequest = async (n: number) => {
    while (held.length < n) await once(arrived, 'request');
    return held[n - 1]!;
  };
  return { url, nextRequest };
}

/**
 * The exchange's contract holds through both dispatchers the worker uses: undici's Agent (https,
 * streamed bodies) and asyncfn's own HTTP/1.1 client, which createHttpClient puts in front of it
 * for plain `http:` requests (src/http/h1/), with its writes made at once or, as the worker makes
 * them, at the end of the I/O phase (src/queue/write-batch.ts). Every test below runs with each.
 */
const DISPATCHERS: ReadonlyArray<{ name: string; make: (connections: number) => HttpDispatcher }> = [
  { name: "undici's Agent", make: (connections) => new Agent({ connections, headersTimeout: 0, bodyTimeout: 0 }) },
  { name: "asyncfn's HTTP/1.1 client", make: (connections) => createHttpClient({ connectionsPerOrigin: connections }) },
  {
    name: "asyncfn's HTTP/1.1 client, its writes in the process's write batch (as the worker makes it)",
    make: (connections) => createHttpClient({ connectionsPerOrigin: connections, deferWrite }),
  },
];

t.test('originAndPath splits plain URLs without a URL object, and the rest with one', async (t) => {
  t.same(originAndPath('http://127.0.0.1:8080/function/echo?x=1'), { origin: 'http://127.0.0.1:8080', path: '/function/echo?x=1' });
  t.same(originAndPath('https://hooks.example.com'), { origin: 'https://hooks.example.com', path: '/' });
  t.same(originAndPath('http://h:1?q=2'), { origin: 'http://h:1', path: '/?q=2' });
  t.same(originAndPath('http://[::1]:8080/a'), { origin: 'http://[::1]:8080', path: '/a' });
  // A fragment is never sent; userinfo is not part of the origin.
  t.same(originAndPath('http://h:1/a?b=1#frag'), { origin: 'http://h:1', path: '/a?b=1' });
  t.same(originAndPath('http://user:pw@h:1/a'), { origin: 'http://h:1', path: '/a' });
});

/**
 * A server on a thread of its own, so that it answers while this thread is blocked. `answered`
 * counts the responses it has handed to the kernel (`Atomics.wait` on it blocks this thread until
 * the next one).
 */
async function serverOnAnotherThread(t: Test): Promise<{ url: string; answered: Int32Array }> {
  const answered = new Int32Array(new SharedArrayBuffer(4));
  const thread = new Worker(
    `const { createServer } = require('node:http');
     const { parentPort, workerData } = require('node:worker_threads');
     const server = createServer((req, res) => {
       req.resume();
       req.on('end', () => {
         res.on('finish', () => { Atomics.add(workerData, 0, 1); Atomics.notify(workerData, 0); });
         res.end('in time');
       });
     });
     server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`,
    { eval: true, workerData: answered },
  );
  t.teardown(() => thread.terminate());
  const [port] = (await once(thread, 'message')) as [number];
  return { url: `http://127.0.0.1:${port}`, answered };
}

for (const { name, make } of DISPATCHERS) {
  const agent = (t: Test, connections = 10): HttpDispatcher => {
    const a = make(connections);
    t.teardown(() => a.destroy());
    return a;
  };

  t.test(name, async (t) => {
    t.test('one request, its whole response: status, lower-case headers (repeated ones as arrays), body', async (t) => {
      const { url, nextRequest } = await heldServer(t);
      const pending = exchange(
        agent(t),
        { url: `${url}/fn?a=1`, method: 'POST', headers: { 'x-call-id': 'c1' }, body: new TextEncoder().encode('hello') },
        { timeoutMs: 10_000 },
      );
      const req = await nextRequest(1);
      t.equal(req.url, '/fn?a=1');
      t.equal(req.body, 'hello');
      req.res.writeHead(201, [
        ['Content-Type', 'text/plain'],
        ['X-Many', 'a'],
        ['X-Many', 'b'],
      ]);
      req.res.write('part one, ');
      req.res.end('part two');
      const response = await pending;
      t.equal(response.status, 201);
      t.equal(response.headers['content-type'], 'text/plain');
      t.same(response.headers['x-many'], ['a', 'b']);
      t.equal(Buffer.from(response.body).toString(), 'part one, part two');
    });

    t.test('discardBody reads the answer to its end and keeps none of it', async (t) => {
      const { url, nextRequest } = await heldServer(t);
      const pending = exchange(agent(t), { url, method: 'POST', headers: {}, body: null }, { timeoutMs: 10_000, discardBody: true });
      (await nextRequest(1)).res.end('ignored');
      const response = await pending;
      t.equal(response.status, 200);
      t.equal(response.body.length, 0);
    });

    t.test('a server that never answers: rejects with ExchangeTimeoutError after timeoutMs', async (t) => {
      const { url, nextRequest } = await heldServer(t);
      const pending = exchange(agent(t), { url, method: 'GET', headers: {}, body: null }, { timeoutMs: 50 });
      await nextRequest(1);
      const err = await pending.catch((e: unknown) => e);
      t.type(err, ExchangeTimeoutError);
      t.equal((err as ExchangeTimeoutError).timeoutMs, 50);
    });

    t.test('an answer that came in time while the event loop was blocked past the deadline is read, not cut', async (t) => {
      const { url, answered } = await serverOnAnotherThread(t);
      const one = agent(t, 1);
      // A connection already open: the next request is written at once, not after a connect.
      t.equal((await exchange(one, { url, method: 'GET', headers: {}, body: null }, { timeoutMs: 10_000 })).status, 200);
      const before = Atomics.load(answered, 0);
      const started = performance.now();
      const pending = exchange(one, { url, method: 'POST', headers: {}, body: new TextEncoder().encode('x') }, { timeoutMs: 50 });
      await new Promise((resolve) => setImmediate(resolve)); // the request is on the wire
      // Blocked, as a worker is by a burst of thousands of answers: the server answers meanwhile,
      // and the deadline passes before the loop reads that answer.
      t.not(Atomics.wait(answered, 0, before, 10_000), 'timed-out', 'the server answered while this thread was blocked');
      blockFor(Math.max(0, started + 150 - performance.now()));
      const response = await pending;
      t.equal(response.status, 200, 'the answer waiting in the socket wins over the timer that fired first');
      t.equal(Buffer.from(response.body).toString(), 'in time');
    });

    t.test('a timeout while queued for a connection rejects at the deadline, not when a connection frees', async (t) => {
      const { url, nextRequest } = await heldServer(t);
      const one = agent(t, 1);
      const first = exchange(one, { url: `${url}/first`, method: 'GET', headers: {}, body: null }, { timeoutMs: 10_000 });
      const firstReq = await nextRequest(1);
      const queued = exchange(one, { url: `${url}/queued`, method: 'GET', headers: {}, body: null }, { timeoutMs: 30 });
      t.type(await queued.catch((e: unknown) => e), ExchangeTimeoutError, 'rejected while the only connection is busy');
      firstReq.res.end('first');
      t.equal((await first).status, 200);
      // The queued request was dropped when its turn came, never sent.
      const third = exchange(one, { url: `${url}/third`, method: 'GET', headers: {}, body: null }, { timeoutMs: 10_000 });
      const thirdReq = await nextRequest(2);
      t.equal(thirdReq.url, '/third', 'the next request the server sees is the third');
      thirdReq.res.end();
      await third;
    });

    t.test('an abort signal cuts the exchange and rejects with its reason', async (t) => {
      const { url, nextRequest } = await heldServer(t);
      const controller = new AbortController();
      const pending = exchange(agent(t), { url, method: 'GET', headers: {}, body: null }, { timeoutMs: 10_000, signal: controller.signal });
      const req = await nextRequest(1);
      const reason = new Error('the invocation left invoking');
      controller.abort(reason);
      t.equal(await pending.catch((e: unknown) => e), reason);
      await once(req.res, 'close');
      t.pass('the server saw the connection close');
    });

    t.test('an already aborted signal rejects without sending anything', async (t) => {
      const err = await exchange(
        agent(t),
        { url: 'http://127.0.0.1:9/never', method: 'GET', headers: {}, body: null },
        { timeoutMs: 10_000, signal: AbortSignal.abort('gone') },
      ).catch((e: unknown) => e);
      t.equal(err, 'gone');
    });

    t.test('a refused connection rejects with the dispatcher error', async (t) => {
      const server = createServer();
      const url = await listen(t, server);
      server.close();
      await once(server, 'close');
      const err = await exchange(agent(t), { url, method: 'GET', headers: {}, body: null }, { timeoutMs: 10_000 }).catch((e: unknown) => e);
      t.match(err, { code: 'ECONNREFUSED' });
    });

    t.test('a dispatcher that throws at once rejects the exchange with its error, and two exchanges keep their own answers', async (t) => {
      // A dispatcher whose dispatch() throws (undici's own throw for invalid options).
      const throwing = new (class extends Dispatcher {
        override dispatch(): boolean {
          throw new Error('invalid request');
        }
      })();
      await t.rejects(exchange(throwing, { url: 'http://127.0.0.1:9/', method: 'GET', headers: {}, body: null }, { timeoutMs: 60_000 }), {
        message: 'invalid request',
      });

      // Each exchange settles its own promise (exchange() hands each handler the settlers of the promise it returns).
      const server = await heldServer(t);
      const a = agent(t);
      const first = exchange(a, { url: `${server.url}/first`, method: 'GET', headers: {}, body: null }, { timeoutMs: 60_000 });
      const second = exchange(a, { url: `${server.url}/second`, method: 'GET', headers: {}, body: null }, { timeoutMs: 60_000 });
      const [one, two] = [await server.nextRequest(1), await server.nextRequest(2)];
      for (const held of [two, one]) held.res.end(held.url);
      t.equal(Buffer.from((await first).body).toString(), '/first');
      t.equal(Buffer.from((await second).body).toString(), '/second');
    });
  });
}
