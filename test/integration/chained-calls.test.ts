import t, { type Test } from 'tap';
import { request } from 'undici';
import { configFor, resolverFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { startCallbackSink, startFunctionServer, type CallbackSink, type FunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import type { RunningGateway } from '../../src/gateway/start.js';
import type { InvocationRecord } from '../../src/status/records.js';

/**
 * Issue 19: a caller's X-Call-Id that already names an invocation (OpenFaaS chains functions by
 * pointing X-Callback-Url at /async-function/<next>, and the callback carries the first call's
 * X-Call-Id) gets a fresh call id with the caller's as its parent; both records are kept.
 */

interface Chain {
  readonly gateway: RunningGateway;
  readonly echo: FunctionServer;
  readonly figlet: FunctionServer;
  readonly sink: CallbackSink;
}

async function startChain(t: Test): Promise<Chain> {
  const nats = await startNatsServer(t);
  const echo = await startFunctionServer(t);
  const figlet = await startFunctionServer(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`*** ${req.body.toString()} ***`);
  });
  const sink = await startCallbackSink(t);
  const resolver = resolverFor({ echo: echo.url, figlet: figlet.url });
  const config = configFor(nats.url);
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  return { gateway, echo, figlet, sink };
}

async function post(gateway: RunningGateway, fn: string, body: string, headers: Record<string, string>) {
  const res = await request(`${gateway.url}/async-function/${fn}`, { method: 'POST', body, headers });
  await res.body.dump();
  return {
    status: res.statusCode,
    callId: String(res.headers['x-call-id']),
    parentCallId: res.headers['x-parent-call-id'] === undefined ? undefined : String(res.headers['x-parent-call-id']),
    replayed: res.headers['idempotent-replayed'] === 'true',
  };
}

async function finalRecord(gateway: RunningGateway, callId: string): Promise<InvocationRecord> {
  const res = await request(`${gateway.url}/async-function/${callId}?wait=20s`);
  if (res.statusCode !== 200) throw new Error(`GET ${callId} answered ${res.statusCode}: ${await res.body.text()}`);
  return (await res.body.json()) as InvocationRecord;
}

t.test("a callback chained into /async-function/figlet keeps echo's record and gets its own", async (t) => {
  const { gateway, echo, figlet } = await startChain(t);
  const a = await post(gateway, 'echo', 'hi', { 'x-callback-url': `${gateway.url}/async-function/figlet` });
  t.equal(a.status, 202);
  t.equal(a.parentCallId, undefined, 'a first call has no parent');

  // The worker's callback for A (X-Call-Id: A) is the request that queues figlet.
  await figlet.waitForRequests(1);
  const call = figlet.requests[0]!;
  const b = String(call.headers['x-call-id']);
  t.not(b, a.callId, 'the chained invocation has its own call id');
  t.equal(call.headers['x-parent-call-id'], a.callId, 'figlet is told which invocation it was chained from');
  t.equal(call.body.toString(), 'hi', "figlet got echo's result");

  const recordA = await finalRecord(gateway, a.callId);
  t.match(recordA, { callId: a.callId, function: 'echo', state: 'succeeded' }, "A's record still says echo");
  t.notOk('parentCallId' in recordA, 'A has no parent');
  const recordB = await finalRecord(gateway, b);
  t.match(recordB, { callId: b, function: 'figlet', parentCallId: a.callId, state: 'succeeded' }, 'the chained record says figlet, parent A');
  t.equal(echo.requests.length, 1, 'echo ran once');
  t.equal(figlet.requests.length, 1, 'figlet ran once');
});

t.test('POST with an X-Call-Id that names an invocation: a new call id, X-Parent-Call-Id, the first record untouched', async (t) => {
  const { gateway, echo, figlet, sink } = await startChain(t);
  const x = `chain.${Math.random().toString(36).slice(2)}`;
  // A caller cannot forge the gateway's X-Parent-Call-Id.
  const first = await post(gateway, 'echo', 'one', { 'x-call-id': x, 'x-callback-url': sink.url, 'x-parent-call-id': 'forged' });
  t.same([first.status, first.callId, first.parentCallId], [202, x, undefined], 'a free X-Call-Id is kept (OpenFaaS)');
  await sink.waitForCallId(x);
  t.equal(echo.requests[0]!.headers['x-parent-call-id'], undefined, "a caller's X-Parent-Call-Id does not reach the function");
  const before = await finalRecord(gateway, x);

  const second = await post(gateway, 'figlet', 'two', { 'x-call-id': x, 'x-callback-url': sink.url });
  t.equal(second.status, 202);
  t.not(second.callId, x, 'a fresh call id');
  t.match(second.callId, /^[0-9a-f-]{36}$/, 'a UUID');
  t.equal(second.parentCallId, x, 'X-Parent-Call-Id names the invocation the caller named');
  const callback = await sink.waitForCallId(second.callId);
  t.equal(callback.headers['x-parent-call-id'], x, 'the callback carries X-Parent-Call-Id');
  t.equal(figlet.requests[0]!.headers['x-call-id'], second.callId);
  t.equal(figlet.requests[0]!.headers['x-parent-call-id'], x);
  t.same(await finalRecord(gateway, x), before, "X's record is unchanged");
  t.match(await finalRecord(gateway, second.callId), { function: 'figlet', parentCallId: x, state: 'succeeded' });
});

t.test('an Idempotency-Key repeat is no chain: it answers the first call id, whatever X-Call-Id says', async (t) => {
  const { gateway, echo, sink } = await startChain(t);
  const y = `idem.${Math.random().toString(36).slice(2)}`;
  const headers = { 'x-call-id': y, 'idempotency-key': `key-${y}`, 'x-callback-url': sink.url };
  const first = await post(gateway, 'echo', 'once', headers);
  t.same([first.status, first.callId, first.replayed], [202, y, false]);
  const repeat = await post(gateway, 'echo', 'once', headers);
  t.same([repeat.status, repeat.callId, repeat.replayed, repeat.parentCallId], [202, y, true, undefined], 'same X-Call-Id and key: the first call id, no parent');

  const z = `${y}.other`;
  const other = await post(gateway, 'echo', 'once', { ...headers, 'x-call-id': z });
  t.same([other.status, other.callId, other.replayed], [202, y, true], 'same key, another X-Call-Id: still the first call id');
  // The record the repeat created for its own X-Call-Id before it knew it was a repeat is removed.
  await eventually(async () => (await request(`${gateway.url}/async-function/${z}`)).statusCode === 404, `no record under ${z}`);

  await sink.waitForCallId(y);
  t.match(await finalRecord(gateway, y), { callId: y, function: 'echo', state: 'succeeded' });
  await echo.waitForIdle();
  t.equal(echo.requests.length, 1, 'ran once for three requests');
});
