import { randomBytes } from 'node:crypto';
import t from 'tap';
import { request } from 'undici';
import { configFor, resolverFor, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { startCallbackSink, startFunctionServer, slowHandler } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

t.test('async: method, path suffix, query, headers and a binary body at the size limit reach the function and the callback', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, (req, res) => {
    res.writeHead(201, { 'content-type': 'application/x-result', 'x-from-function': 'yes' });
    res.end(req.body);
  });
  const sink = await startCallbackSink(t);
  const resolver = resolverFor({ echo: `${fn.url}/base` });
  const config = configFor(nats.url);
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);

  const body = randomBytes(config.gateway.maxBodyBytes);
  const res = await request(`${gateway.url}/async-function/echo/sub/path?x=1&y=%20z`, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/octet-stream',
      'x-custom': 'abc',
      'x-callback-url': `${sink.url}/hook?token=1`,
    },
  });
  t.equal(res.statusCode, 202);
  t.equal(await res.body.text(), '', '202 has an empty body');
  const callId = String(res.headers['x-call-id']);
  t.match(callId, UUID, 'a generated call id is a UUID');

  const callback = await sink.waitForCallId(callId);
  t.equal(fn.requests.length, 1, 'the function ran once');
  const call = fn.requests[0]!;
  t.equal(call.method, 'POST');
  t.equal(call.url, '/base/sub/path?x=1&y=%20z', 'path suffix and raw query kept');
  t.equal(call.headers['x-custom'], 'abc', "caller's header forwarded");
  t.equal(call.headers['content-type'], 'application/octet-stream');
  t.equal(call.headers['x-call-id'], callId);
  t.ok(call.body.equals(body), `function received the ${body.length}-byte body intact`);

  t.equal(callback.method, 'POST');
  t.equal(callback.url, '/hook?token=1');
  t.ok(callback.body.equals(body), 'callback carries the function body intact');
  t.equal(callback.headers['content-type'], 'application/x-result', "callback has the function's Content-Type");
  t.equal(callback.headers['x-call-id'], callId);
  t.equal(callback.headers['x-function-name'], 'echo');
  t.equal(callback.headers['x-function-status'], '201');
  t.match(callback.headers['x-start-time'], /^\d{19}$/, 'X-Start-Time is unix nanoseconds');
  t.match(callback.headers['x-duration-seconds'], /^\d+\.\d{6}$/);
  t.equal(callback.headers['x-retry'], '0');
  t.match(callback.headers['user-agent'], /^asyncfn-queue-worker\/\d+\.\d+\.\d+/);
});

t.test("async: the caller's X-Call-Id is kept end to end", async (t) => {
  const { fn, sink, gateway } = await startStack(t);

  const res = await request(`${gateway.url}/async-function/work.openfaas-fn`, {
    method: 'POST',
    body: 'hi',
    headers: { 'x-call-id': 'my-call-1', 'x-callback-url': sink.url },
  });
  t.equal(res.statusCode, 202);
  t.equal(res.headers['x-call-id'], 'my-call-1');
  await res.body.dump();
  const callback = await sink.waitForCallId('my-call-1');
  t.equal(callback.body.toString(), 'hi');
  t.equal(fn.requests[0]?.headers['x-call-id'], 'my-call-1');
});

t.test('sync: method, path, query, headers and a binary body stream both ways', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, (req, res) => {
    res.writeHead(207, { 'content-type': 'application/x-out', 'x-from-function': 'yes' });
    res.end(Buffer.concat([Buffer.from('out:'), req.body]));
  });
  const resolver = resolverFor({ echo: fn.url });
  const gateway = await startTestGateway(t, configFor(nats.url), resolver);

  const body = randomBytes(3 * 1024 * 1024);
  const res = await request(`${gateway.url}/function/echo/a/b?q=1`, {
    method: 'PUT',
    body,
    headers: { 'content-type': 'application/x-in', 'x-custom': 'abc', 'x-call-id': 'sync-1' },
  });
  const received = Buffer.from(await res.body.arrayBuffer());
  t.equal(res.statusCode, 207, "the function's status");
  t.equal(res.headers['content-type'], 'application/x-out');
  t.equal(res.headers['x-from-function'], 'yes', "the function's headers");
  t.equal(res.headers['x-call-id'], 'sync-1');
  t.match(res.headers['x-start-time'], /^\d{19}$/);
  t.match(res.headers['x-duration-seconds'], /^\d+\.\d{6}$/);
  t.ok(received.equals(Buffer.concat([Buffer.from('out:'), body])), 'response body intact (larger than the async limit: streamed)');

  const call = fn.requests[0]!;
  t.equal(call.method, 'PUT');
  t.equal(call.url, '/a/b?q=1');
  t.equal(call.headers['x-custom'], 'abc');
  t.equal(call.headers['content-type'], 'application/x-in');
  t.ok(call.body.equals(body), 'request body intact');
});

t.test('sync: GET without a body, and a generated X-Call-Id', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const gateway = await startTestGateway(t, configFor(nats.url), resolverFor({ echo: fn.url }));
  const res = await request(`${gateway.url}/function/echo?only=query`);
  t.equal(res.statusCode, 200);
  t.match(String(res.headers['x-call-id']), UUID);
  await res.body.dump();
  t.equal(fn.requests[0]?.method, 'GET');
  t.equal(fn.requests[0]?.url, '/?only=query');
  t.equal(fn.requests[0]?.body.length, 0);
});

t.test('async: a function that cannot be reached is reported to the callback as 503', async (t) => {
  const nats = await startNatsServer(t);
  const sink = await startCallbackSink(t);
  // Port 9 (discard) on loopback: nothing listens, the connection is refused.
  const resolver = resolverFor({ gone: 'http://127.0.0.1:9' });
  const config = configFor(nats.url);
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const res = await request(`${gateway.url}/async-function/gone`, { method: 'POST', headers: { 'x-callback-url': sink.url } });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  const callback = await sink.waitForCallId(String(res.headers['x-call-id']));
  t.equal(callback.headers['x-function-status'], '503');
  t.match(callback.body.toString(), /could not reach function "gone"/);
});

t.test('async: upstream_timeout aborts the function call and reports 504', async (t) => {
  const { fn, sink, gateway } = await startStack(t, {
    name: 'slow',
    handler: slowHandler(60_000),
    config: { worker: { upstreamTimeoutMs: 300 } },
  });
  const res = await request(`${gateway.url}/async-function/slow`, { method: 'POST', headers: { 'x-callback-url': sink.url } });
  await res.body.dump();
  const callback = await sink.waitForCallId(String(res.headers['x-call-id']));
  t.equal(callback.headers['x-function-status'], '504');
  t.match(callback.body.toString(), /upstream_timeout/);
  // The function would answer after 60 s; its connection closing within 5 s means the call was aborted.
  await t.resolves(fn.waitForIdle(5_000), 'the HTTP call to the function was aborted');
});
