import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { callerGone } from '../../../src/http/caller-gone.js';

/** A real server whose requests the test takes one at a time, with their responses. */
async function server(t: Test) {
  const arrivals: Array<[IncomingMessage, ServerResponse]> = [];
  const srv = createServer((req, res) => {
    arrivals.push([req, res]);
    srv.emit('arrival');
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  const next = async (): Promise<[IncomingMessage, ServerResponse]> => {
    if (arrivals.length === 0) await once(srv, 'arrival');
    return arrivals.shift()!;
  };
  return { port: (srv.address() as AddressInfo).port, next };
}

async function readAll(req: IncomingMessage): Promise<void> {
  for await (const chunk of req) void chunk;
}

t.test('a caller waiting for its answer after sending the whole body has not gone, though node destroyed the request', async (t) => {
  const { port, next } = await server(t);
  const client = request({ port, method: 'POST', headers: { 'content-length': '5' } });
  client.end('hello');
  const answered = once(client, 'response');
  const [req, res] = await next();
  await readAll(req);
  t.ok(req.destroyed, "node destroys a request read to its end (the predicate this replaces read it as 'gone')");
  t.notOk(callerGone(req));
  res.end('ok');
  await answered;
});

t.test('a caller that cut its body short has gone', async (t) => {
  const { port, next } = await server(t);
  const client = request({ port, method: 'POST', headers: { 'content-length': '100' } });
  client.on('error', () => undefined);
  client.write('only ten b');
  const [req] = await next();
  // The cut body is an 'aborted' error on the request's stream (which would reject once(req, 'close')).
  req.on('error', () => undefined);
  const ended = new Promise((resolve) => req.once('close', resolve));
  req.resume();
  client.destroy();
  await ended;
  t.ok(callerGone(req));
});

t.test('a caller that sent its whole body, then closed the connection, has gone', async (t) => {
  const { port, next } = await server(t);
  const client = request({ port, method: 'POST', headers: { 'content-length': '5' } });
  client.on('error', () => undefined);
  client.end('hello');
  const [req] = await next();
  await readAll(req);
  const closed = once(req.socket, 'close');
  client.destroy();
  await closed;
  t.ok(callerGone(req));
});
