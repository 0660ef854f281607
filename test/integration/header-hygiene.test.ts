import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { gunzipSync, gzipSync } from 'node:zlib';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { MsgHdrsImpl } from '@nats-io/nats-core';
import { CallbackFailedError, deliverCallback } from '../../src/callback/deliver.js';
import { invokeFunction } from '../../src/functions/invoke.js';
import { createHttpClient } from '../../src/http/client.js';
import { decodeEnvelope, encodeEnvelope, EnvelopeHeader } from '../../src/queue/envelope.js';
import { configFor, resolverFor, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { startCallbackSink, startFunctionServer, type RecordedRequest } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { rawRequest } from '../helpers/raw-http.js';
import { testInvocation } from '../helpers/invocations.js';

/** Callbacks go to a loopback sink. */
const LOOPBACK_CALLBACKS = { callbackAllow: ['127.0.0.0/8'] };

/** Hop-by-hop fields a caller sends, with X-Hop-Named made hop-by-hop by its Connection header. */
const CALLER_HOP_BY_HOP = [
  'Connection: keep-alive, X-Hop-Named',
  'X-Hop-Named: must-not-pass',
  'Keep-Alive: timeout=99',
  'TE: trailers',
  'Trailer: X-Checksum',
  'Upgrade: websocket',
  'Proxy-Authorization: Basic cHJveHk6cHJveHk=',
  'Proxy-Anything: x',
  'Proxy: http://attacker.test:8080',
];
const HOP_NAMES = ['x-hop-named', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-anything', 'proxy'];

/** What a caller might try to steer the envelope or JetStream with. */
const CALLER_RESERVED = [
  'Asyncfn-Version: 99',
  'Asyncfn-Call-Id: injected-call-id',
  'Asyncfn-Function: other-function',
  'Asyncfn-Namespace: kube-system',
  'Asyncfn-Method: DELETE',
  'Asyncfn-Path: /admin',
  'Asyncfn-Query: drop=all',
  'Asyncfn-Callback-Url: http://attacker.test/steal',
  'Asyncfn-Enqueued-At: 0',
  'Asyncfn-Expires-At: 1',
  'Asyncfn-H-X-Smuggled: 1',
  'Asyncfn-Result-Status: 200',
  'Nats-Msg-Id: same-id-every-time',
  'Nats-Expected-Stream: not-this-stream',
  'Nats-Expected-Last-Sequence: 12345',
  'Nats-Expected-Last-Msg-Id: nope',
  'Nats-Rollup: all',
  'Nats-TTL: 1s',
];

function assertNoneOf(t: Test, req: RecordedRequest | undefined, names: readonly string[], what: string): void {
  for (const name of names) t.equal(req?.headers[name], undefined, `${what}: no ${name}`);
}

function assertNoReserved(t: Test, req: RecordedRequest | undefined, what: string): void {
  const reserved = Object.keys(req?.headers ?? {}).filter((n) => n.startsWith('asyncfn-') || n.startsWith('nats-'));
  t.same(reserved, [], `${what}: no Asyncfn-* or Nats-* header`);
}

t.test('sync proxy: hop-by-hop headers (and those Connection names) are stripped both ways', async (t) => {
  const { gateway, fn } = await startStack(t, {
    worker: false,
    handler: (_req, res) => {
      res.setHeader('Connection', 'keep-alive, X-Fn-Hop');
      res.setHeader('X-Fn-Hop', 'must-not-pass');
      res.setHeader('Keep-Alive', 'timeout=99');
      res.setHeader('Proxy-Authenticate', 'Basic realm="fn"');
      res.setHeader('Upgrade', 'h2c');
      res.setHeader('Trailer', 'X-Checksum');
      res.setHeader('X-Fn-Keep', 'yes');
      res.setHeader('Content-Type', 'text/plain');
      // Chunked, so the Trailer field is legal; the trailer itself is added at the end.
      res.write('o');
      res.addTrailers({ 'X-Checksum': 'abc' });
      res.end('k');
    },
  });
  const { host } = new URL(gateway.url);
  const answer = await rawRequest(gateway.url, ['GET /function/work HTTP/1.1', `Host: ${host}`, 'X-Keep: yes', ...CALLER_HOP_BY_HOP].join('\r\n'));
  t.equal(answer.status, 200);
  t.equal(answer.body, 'ok');

  const seen = fn.requests[0];
  t.equal(seen?.headers['x-keep'], 'yes', 'an end-to-end header passes');
  assertNoneOf(t, seen, HOP_NAMES, 'function');
  t.notMatch(seen?.headers.connection ?? '', /x-hop-named/i, "the function's Connection header is the gateway's own");

  t.equal(answer.header('x-fn-keep'), 'yes', "the function's end-to-end header passes");
  for (const name of ['x-fn-hop', 'proxy-authenticate', 'upgrade', 'trailer']) t.equal(answer.header(name), undefined, `caller: no ${name}`);
  t.not(answer.header('keep-alive'), 'timeout=99', "the caller's Keep-Alive is the gateway's own, if any");
  t.notMatch(answer.header('connection') ?? '', /x-fn-hop/i);
});

t.test('async: hop-by-hop and reserved headers are not stored, and cannot change the envelope or JetStream', async (t) => {
  const { gateway, fn, sink, nats, config, resolver } = await startStack(t, { worker: false, config: { security: LOOPBACK_CALLBACKS } });
  const { host } = new URL(gateway.url);
  const post = () =>
    rawRequest(
      gateway.url,
      [
        'POST /async-function/work HTTP/1.1',
        `Host: ${host}`,
        'Content-Length: 4',
        'X-Keep: yes',
        `X-Callback-Url: ${sink.url}/hook`,
        ...CALLER_HOP_BY_HOP,
        ...CALLER_RESERVED,
      ].join('\r\n'),
      'body',
    );
  // Any of these taking effect would fail the publish (503) or drop the second message as a duplicate.
  const first = await post();
  const second = await post();
  t.equal(first.status, 202, first.body);
  t.equal(second.status, 202, second.body);
  const callIds = [first.header('x-call-id'), second.header('x-call-id')];
  t.not(callIds[0], 'injected-call-id', 'Asyncfn-Call-Id is not the call id');
  t.not(callIds[0], callIds[1], 'two calls, two ids: Nats-Msg-Id did not deduplicate');

  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  t.equal((await jsm.streams.info(config.queue.stream)).state.messages, 2, 'both invocations are stored');
  const envelopeNames = new Set(Object.values(EnvelopeHeader).map((n) => n.toLowerCase()));
  for (const seq of [1, 2]) {
    const stored = await jsm.streams.getMessage(config.queue.stream, { seq });
    if (!stored) throw new Error(`message ${seq} is not in the stream`);
    const names = [...stored.header.keys()].map((n) => n.toLowerCase());
    const unexpected = names.filter((n) => !envelopeNames.has(n) && !n.startsWith('asyncfn-h-'));
    t.same(unexpected, [], `message ${seq}: only envelope headers and namespaced caller headers`);
    const callerNames = names.filter((n) => n.startsWith('asyncfn-h-')).map((n) => n.slice('asyncfn-h-'.length));
    t.same(
      callerNames.filter((n) => n.startsWith('asyncfn-') || n.startsWith('nats-') || HOP_NAMES.includes(n)),
      [],
      `message ${seq}: no reserved or hop-by-hop caller header stored`,
    );
    const invocation = decodeEnvelope(stored.header, stored.data);
    t.match(
      invocation,
      {
        callId: callIds[seq - 1],
        functionName: 'work',
        namespace: 'openfaas-fn',
        method: 'POST',
        path: '',
        query: '',
        callbackUrl: `${sink.url}/hook`,
        expiresAtMs: undefined,
      },
      `message ${seq}: the envelope is the gateway's`,
    );
    t.same(
      invocation.headers.filter(([n]) => n === 'x-keep'),
      [['x-keep', 'yes']],
    );
  }

  await startTestWorker(t, config, resolver);
  const callbacks = await sink.waitFor(2);
  t.same(
    callbacks.map((c) => c.url),
    ['/hook', '/hook'],
    'callbacks go to X-Callback-Url, not Asyncfn-Callback-Url',
  );
  t.same(fn.requests.map((r) => [r.method, r.url, r.headers['x-call-id']]).sort(), callIds.map((id) => ['POST', '/', id]).sort());
  for (const req of fn.requests) {
    t.equal(req.headers['x-keep'], 'yes');
    assertNoneOf(t, req, HOP_NAMES, 'function (async)');
    assertNoReserved(t, req, 'function (async)');
  }
});

t.test("neither the caller nor the function can set the callback's or the sync response's own headers", async (t) => {
  const forged = {
    'X-Call-Id': 'forged-call-id',
    'X-Function-Status': '299',
    'X-Function-Name': 'forged-name',
    'X-Start-Time': '1',
    'X-Duration-Seconds': '999.000000',
    'X-Retry': '7',
    'X-Retry-Max': '9',
    'User-Agent': 'forged-agent',
    'webhook-id': 'msg_forged',
    'webhook-timestamp': '1',
    'webhook-signature': 'v1,Zm9yZ2Vk',
  };
  const { gateway, sink } = await startStack(t, {
    config: { security: LOOPBACK_CALLBACKS },
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', ...forged });
      res.end('result');
    },
  });
  const { 'X-Call-Id': _keptByOpenFaaS, ...callerForged } = forged;
  const res = await request(`${gateway.url}/async-function/work`, { method: 'POST', headers: { ...callerForged, 'x-callback-url': sink.url } });
  t.equal(res.statusCode, 202);
  const callId = String(res.headers['x-call-id']);
  const cb = await sink.waitForCallId(callId);
  t.equal(cb.headers['x-call-id'], callId);
  t.equal(cb.headers['x-function-status'], '200');
  t.equal(cb.headers['x-function-name'], 'work');
  t.match(cb.headers['x-start-time'], /^\d{19}$/);
  t.not(cb.headers['x-duration-seconds'], '999.000000');
  t.equal(cb.headers['x-retry'], '0');
  t.equal(cb.headers['x-retry-max'], '0');
  t.match(cb.headers['user-agent'], /^asyncfn-queue-worker\//);
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) t.equal(cb.headers[name], undefined, `no ${name} (signing is off)`);

  const sync = await request(`${gateway.url}/function/work`, { headers: { 'x-call-id': 'my-call' } });
  t.equal(await sync.body.text(), 'result');
  t.equal(sync.headers['x-call-id'], 'my-call', "the sync response carries the gateway's X-Call-Id");
  t.match(sync.headers['x-start-time'], /^\d{19}$/);
  t.not(sync.headers['x-duration-seconds'], '999.000000');
});

t.test("a function's gzip answer keeps its Content-Encoding: in the callback, direct and durable, and in the kept result", async (t) => {
  const result = JSON.stringify({ ok: true, text: 'x'.repeat(2_000) });
  const { gateway, sink, fn } = await startStack(t, {
    config: { security: LOOPBACK_CALLBACKS, callback: { initialWaitMs: 20, maxWaitMs: 20 } },
    handler: (req, res) => {
      // As a function behind OpenFaaS's watchdog may: compressed because the caller accepts it.
      const gzip = String(req.headers['accept-encoding'] ?? '').includes('gzip');
      res.writeHead(200, { 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
      res.end(gzip ? gzipSync(result) : result);
    },
  });
  const durableSink = await startCallbackSink(t, (n) => (n === 1 ? 503 : 200));
  const read = (req: RecordedRequest): string => {
    t.equal(req.headers['content-encoding'], 'gzip');
    t.equal(req.headers['content-type'], 'application/json');
    return gunzipSync(req.body).toString();
  };
  for (const [receiver, what] of [
    [sink, 'the direct callback'],
    [durableSink, 'the durable one, after a 503'],
  ] as const) {
    const res = await request(`${gateway.url}/async-function/work`, {
      method: 'POST',
      headers: { 'accept-encoding': 'gzip', 'x-callback-url': receiver.url, 'x-store-result': 'true' },
    });
    t.equal(res.statusCode, 202);
    const callId = String(res.headers['x-call-id']);
    const callbacks = await receiver.waitFor(receiver === sink ? 1 : 2);
    t.equal(read(callbacks.at(-1)!), result, `${what}: the body reads as the function's once decompressed`);

    // The record names the kept result once the invocation is settled, just after its callback.
    t.match(await (await request(`${gateway.url}/async-function/${callId}?wait=10s`)).body.json(), { state: 'succeeded', result: { contentEncoding: 'gzip' } });
    const kept = await request(`${gateway.url}/async-function/${callId}/result`);
    t.equal(kept.statusCode, 200);
    t.equal(kept.headers['content-encoding'], 'gzip', 'the kept result too');
    t.equal(gunzipSync(Buffer.from(await kept.body.arrayBuffer())).toString(), result);
  }
  t.equal(fn.requests.length, 2, 'the function ran once for each');
});

t.test('431 when a request has too many header fields or too many header bytes', async (t) => {
  const { gateway: defaults } = await startStack(t, { worker: false });
  const { gateway: small } = await startStack(t, { worker: false, config: { security: { maxHeaderCount: 10, maxHeaderBytes: 2048 } } });
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-Field-${i}: ${i}`);
  const get = (url: string, path: string, lines: string[]) =>
    rawRequest(url, [`GET ${path} HTTP/1.1`, `Host: ${new URL(url).host}`, 'Connection: close', ...lines].join('\r\n'));

  const expect431 = (answer: Awaited<ReturnType<typeof get>>, reason: RegExp, what: string) => {
    t.equal(answer.status, 431, `${what}: 431`);
    t.equal(answer.header('x-asyncfn-error'), 'ASYNCFN_ERR_HEADERS_TOO_LARGE', `${what}: error code`);
    t.match(answer.header('content-type'), /^text\/plain/);
    t.match(answer.body, /^[^\n]+\n$/, `${what}: one line`);
    t.match(answer.body, reason, what);
  };

  // Host and Connection count: 2 + 98 = 100 fields is the default limit.
  t.equal((await get(defaults.url, '/healthz', fields(98))).status, 200, '100 fields pass');
  expect431(await get(defaults.url, '/healthz', fields(99)), /more than 100 header fields \(max_header_count\)/, '101 fields');
  expect431(await get(defaults.url, '/function/work', fields(500)), /more than 100 header fields/, "502 fields (past node's own cap)");
  t.equal((await get(defaults.url, '/healthz', [`X-Big: ${'a'.repeat(15_000)}`])).status, 200, '15 KB of headers pass');
  expect431(await get(defaults.url, '/healthz', [`X-Big: ${'a'.repeat(17_000)}`]), /request headers exceed the 16384-byte limit \(max_header_size\)/, '17 KB of headers');

  t.equal((await get(small.url, '/healthz', fields(8))).status, 200, 'max_header_count=10: 10 fields pass');
  expect431(await get(small.url, '/healthz', fields(9)), /more than 10 header fields/, 'max_header_count=10: 11 fields');
  t.equal((await get(small.url, '/healthz', [`X-Big: ${'a'.repeat(1500)}`])).status, 200, 'max_header_size=2048: 1.5 KB pass');
  expect431(await get(small.url, '/healthz', [`X-Big: ${'a'.repeat(2100)}`]), /exceed the 2048-byte limit/, 'max_header_size=2048: 2.1 KB');
});

t.test('a caller cannot send a header holding CR or LF: 400 in the usual format, nothing forwarded', async (t) => {
  const { gateway, fn } = await startStack(t, { worker: false });
  const { host } = new URL(gateway.url);
  for (const [what, line] of [
    ['bare CR', 'X-A: a\rX-Injected: 1'],
    ['bare LF', 'X-A: a\nX-Injected: 1'],
    ['obs-fold', 'X-A: a\r\n X-Injected: 1'],
  ] as const) {
    for (const path of ['/async-function/work', '/function/work']) {
      const answer = await rawRequest(gateway.url, [`POST ${path} HTTP/1.1`, `Host: ${host}`, 'Content-Length: 0', line].join('\r\n'));
      t.equal(answer.status, 400, `${what} to ${path}: 400`);
      t.match(answer.body, /^malformed HTTP request(: [^\n]+)?\n$/, `${what} to ${path}: one line`);
      t.equal(answer.header('x-asyncfn-error'), 'ASYNCFN_ERR_BAD_REQUEST', `${what} to ${path}: coded`);
    }
  }
  t.equal(fn.requests.length, 0, 'nothing reached the function');
});

t.test("a function's response header holding CR cannot reach the callback or the sync caller", async (t) => {
  // A function answering with a Content-Type that holds a bare CR followed by a would-be header.
  const evil = createServer((socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\rX-Injected: 1\r\nContent-Length: 2\r\n\r\nok'));
  });
  evil.listen(0, '127.0.0.1');
  await once(evil, 'listening');
  t.teardown(() => new Promise<void>((resolve) => evil.close(() => resolve())));
  const nats = await startNatsServer(t);
  const sink = await startCallbackSink(t);
  const resolver = resolverFor({ evil: `http://127.0.0.1:${(evil.address() as AddressInfo).port}` });
  const config = configFor(nats.url, { security: LOOPBACK_CALLBACKS });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);

  const res = await request(`${gateway.url}/async-function/evil`, { method: 'POST', headers: { 'x-callback-url': sink.url } });
  t.equal(res.statusCode, 202);
  const cb = await sink.waitForCallId(String(res.headers['x-call-id']));
  t.equal(cb.headers['x-function-status'], '503', 'undici refused the response: a transport failure');
  t.equal(cb.headers['content-type'], 'text/plain; charset=utf-8', "the callback's Content-Type is the worker's own");
  t.equal(cb.headers['x-injected'], undefined, 'no injected header');

  const sync = await request(`${gateway.url}/function/evil`);
  t.equal(sync.statusCode, 502, 'the sync proxy refuses it too');
  t.equal(sync.headers['x-injected'], undefined);
  await sync.body.dump();
});

t.test('CR/LF cannot ride in the envelope, and undici refuses it in any outgoing header', async (t) => {
  // NATS header values cannot hold CR or LF: the envelope writes such a value escaped, on one line.
  const invocation = {
    callId: 'c1',
    functionName: 'work',
    namespace: 'openfaas-fn',
    method: 'POST',
    path: '',
    query: '',
    headers: [['x-a', 'a\r\nX-Injected: 1']] as Array<[string, string]>,
    body: new Uint8Array(0),
    enqueuedAtMs: 1,
  };
  const { headers } = encodeEnvelope(invocation);
  const wire = new TextDecoder().decode((headers as MsgHdrsImpl).encode());
  t.notMatch(wire, /\r\nX-Injected:/i, 'no injected line in the NATS header block');
  t.notOk(
    [...headers.keys()].some((k) => /injected/i.test(k)),
    'no injected header in the envelope',
  );
  // A message published by something else with a bare LF in a header block: nats.js refuses to decode it.
  const block = new TextEncoder().encode('NATS/1.0\r\nAsyncfn-H-x-a: a\nX-Injected: 1\r\n\r\n');
  t.throws(() => MsgHdrsImpl.decode(block), /cannot contain \\r or \\n/, 'decoding such a header block throws');

  // Should a decoded envelope hold one anyway, the worker's function call and callback (and the
  // sync proxy) send headers with undici, which refuses CR, LF and NUL in a value.
  const fn = await startFunctionServer(t);
  const sink = await startCallbackSink(t);
  const dispatcher = createHttpClient({ connectionsPerOrigin: 1 });
  t.teardown(() => dispatcher.close());
  const invoke = invokeFunction({ resolver: resolverFor({ work: fn.url }), dispatcher, upstreamTimeoutMs: 5_000 });
  const outcome = await invoke({ invocation: { ...invocation, headers: [['x-a', 'a\r\nX-Injected: 1']] }, attempt: 1 });
  t.equal(outcome.status, 503, 'the call fails before it is sent');
  t.match(outcome.transportError, /invalid x-a header/);
  t.equal(fn.requests.length, 0, 'the function received nothing');

  const deliver = deliverCallback({ dispatcher, timeoutMs: 5_000, version: '0.0.0' });
  const failed = await deliver({
    invocation: { ...invocation, headers: [], callbackUrl: sink.url },
    outcome: { status: 200, contentType: 'text/plain\r\nX-Injected: 1', body: new Uint8Array(0), startedAtMs: 1, durationMs: 1 },
    attempt: 1,
    maxAttempts: 1,
  }).catch((e: unknown) => e);
  t.type(failed, CallbackFailedError, 'the callback fails before it is sent');
  t.equal(sink.received.length, 0, 'the receiver received nothing');
});

t.test('a message that did not come through a gateway reaches the function with only the headers a gateway forwards', async (t) => {
  const { fn, nats, config } = await startStack(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const { host } = new URL(fn.url);
  const invocation = testInvocation({
    callId: randomUUID(),
    functionName: 'work',
    enqueuedAtMs: Date.now(),
    callbackUrl: undefined,
    body: new TextEncoder().encode('body'),
    headers: [
      ['x-keep', 'yes'],
      ['host', 'evil.example'],
      ['content-length', '999'],
      ['transfer-encoding', 'chunked'],
      ['connection', 'close'],
      ['proxy-authorization', 'Basic cHJveHk6cHJveHk='],
      ['asyncfn-call-id', 'injected'],
      ['nats-msg-id', 'injected'],
      ['constructor', 'mine'],
    ],
  });
  const { headers, data } = encodeEnvelope(invocation);
  await nc.request(config.queue.subject, data, { headers, timeout: 5_000 });
  await fn.waitForRequests(1);
  const req = fn.requests[0]!;
  t.equal(req.headers['x-keep'], 'yes', 'an end-to-end header passes');
  t.equal(req.headers.host, host, "the Host is the function's own");
  t.equal(req.headers['content-length'], '4', 'the body framed by its own length');
  assertNoneOf(t, req, ['transfer-encoding', 'proxy-authorization'], 'function (a message from elsewhere)');
  assertNoReserved(t, req, 'function (a message from elsewhere)');
  t.equal(req.headers.constructor, 'mine', "a header named constructor is the caller's, not Object's");
  t.equal(req.body.toString(), 'body');
});

t.test("a caller's header named constructor reaches the function as sent, async and sync", async (t) => {
  const { gateway, fn } = await startStack(t);
  const res = await request(`${gateway.url}/async-function/work`, { method: 'POST', headers: { constructor: 'async' }, body: 'a' });
  t.equal(res.statusCode, 202);
  await fn.waitForRequests(1);
  const sync = await request(`${gateway.url}/function/work`, { method: 'POST', headers: { constructor: 'sync' }, body: 's' });
  t.equal(sync.statusCode, 200);
  // Sent twice (Object's, then the caller's), node would join them: "function Object() { [native code] }, async".
  t.same(
    fn.requests.map((r) => r.headers.constructor),
    ['async', 'sync'],
    'once each, with its value',
  );
});
