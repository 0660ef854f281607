import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import t, { type Test } from 'tap';
import { configFor, resolverFor, spawnAsyncfn, startTestGateway, writeFunctionsFile } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { waitForEvent } from '../helpers/eventually.js';
import { listen } from '../helpers/http-servers.js';
import { startNatsServer, TLS_FIXTURES } from '../helpers/nats-server.js';

/**
 * Functions and callback receivers behind https: the worker's own HTTP/1.1 client takes only
 * plain `http:` calls, and hands these to undici's Agent, which it loads on the first one
 * (src/http/undici-parts.ts). The fixture server certificate (127.0.0.1, localhost) is signed by
 * the fixture CA, which the worker trusts through NODE_EXTRA_CA_CERTS, as an operator with a
 * private CA would set it.
 */

interface Received {
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  /** The request came over TLS. */
  readonly encrypted: boolean;
}

/** An https server answering `status` with `answer`, recording what it received. */
async function httpsServer(t: Test, status: number, answer: string): Promise<{ url: string; received: Received[]; events: EventEmitter }> {
  const [cert, key] = await Promise.all([readFile(TLS_FIXTURES.serverCert), readFile(TLS_FIXTURES.serverKey)]);
  const events = new EventEmitter();
  const received: Received[] = [];
  const server: Server = createServer({ cert, key }, async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    received.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), encrypted: (req.socket as TLSSocket).encrypted === true });
    res.writeHead(status, { 'content-type': 'text/plain' }).end(answer);
    events.emit('change');
  });
  return { url: await listen(t, server), received, events };
}

t.test('a worker calls an https function and delivers to an https callback receiver through undici, loaded on first use', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await httpsServer(t, 200, 'hello over tls');
  const sink = await httpsServer(t, 202, '');
  const gateway = await startTestGateway(t, configFor(nats.url), resolverFor({ work: fn.url }));
  await spawnAsyncfn(t, 'worker', {
    NATS_URL: nats.url,
    functions_file: await writeFunctionsFile(t, { work: fn.url }),
    NODE_EXTRA_CA_CERTS: TLS_FIXTURES.ca,
  });

  const [callId] = await enqueueMany(gateway.url, 'work', 1, `${sink.url}/done`);
  await waitForEvent(sink.events, 'change', () => sink.received.length > 0, 'the callback over https', 30_000);

  t.equal(fn.received.length, 1, 'the function was called once');
  t.equal(fn.received[0]!.encrypted, true, 'over TLS');
  t.equal(fn.received[0]!.headers['x-call-id'], callId, 'with the call id');
  const [callback] = sink.received;
  t.equal(callback!.encrypted, true, 'the callback came over TLS');
  t.equal(callback!.url, '/done');
  t.equal(callback!.headers['x-call-id'], callId);
  t.equal(callback!.headers['x-function-status'], '200', "the function's status");
  t.equal(callback!.body.toString(), 'hello over tls', "and its answer's body");
});
