import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import { staticResolver } from '../../src/functions/static-file.js';
import { configFor, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { eventually } from '../helpers/eventually.js';
import { slowHandler, startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { startRawHttpServer } from '../helpers/raw-http.js';

async function deadLetters(natsUrl: string): Promise<Array<Record<string, unknown>>> {
  const out: string[] = [];
  await runDlqCommand(['list', '--json'], { natsUrl, out: (l) => out.push(l), err: () => undefined });
  return out.map((line) => JSON.parse(line) as Record<string, unknown>);
}

t.test('cancel a running and a queued invocation: neither completes, the running call is aborted, callbacks say 499', async (t) => {
  const { fn, sink, gateway } = await startStack(t, { handler: slowHandler(60_000), config: { worker: { maxInflight: 1 } } });
  const [running, queued] = await enqueueMany(gateway.url, 'work', 2, sink.url);
  await fn.waitForConcurrent(1);

  for (const callId of [queued!, running!]) {
    const res = await request(`${gateway.url}/async-function/${callId}`, { method: 'DELETE' });
    t.equal(res.statusCode, 202, `DELETE ${callId === running ? 'running' : 'queued'} → 202`);
    await res.body.dump();
  }
  await t.resolves(fn.waitForIdle(5_000), "the running call's connection was aborted");
  for (const callId of [running!, queued!]) {
    const callback = await sink.waitForCallId(callId);
    t.equal(callback.headers['x-function-status'], '499', 'the callback reports the cancellation');
    t.equal(callback.body.toString(), 'invocation cancelled\n');
  }
  t.equal(fn.requests.length, 1, 'the queued one never ran');

  // The worker records the final state right after the ack, which follows the callback.
  let reason = '';
  await eventually(async () => {
    const again = await request(`${gateway.url}/async-function/${running}`, { method: 'DELETE' });
    reason = await again.body.text();
    return again.statusCode === 404;
  }, 'the cancelled invocation to be recorded as finished');
  t.match(reason, /already finished \(cancelled\)/, 'a finished invocation cannot be cancelled');
  const unknown = await request(`${gateway.url}/async-function/no-such-call`, { method: 'DELETE' });
  t.equal(unknown.statusCode, 404);
  t.match(await unknown.body.text(), /no invocation with call id "no-such-call"/);
});

t.test('callback receiver down, then back after several attempts: the callback arrives, the function ran once', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const sink = await startCallbackSink(t, (n) => (n <= 3 ? 503 : 200));
  const resolver = staticResolver({ work: { url: fn.url } }, 'openfaas-fn');
  const config = configFor(nats.url, { callback: { initialWaitMs: 50, maxWaitMs: 200, maxAttempts: 10 } });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'payload');
  await sink.waitFor(4);
  t.same(
    sink.received.map((r) => r.headers['x-call-id']),
    [callId, callId, callId, callId],
    'four deliveries of one callback',
  );
  t.equal(sink.received[3]?.body.toString(), 'payload');
  t.equal(fn.requests.length, 1, 'the function ran exactly once');
});

t.test('a callback failing every attempt goes to the dead letters; 410 Gone is dead-lettered after one attempt', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const down = await startCallbackSink(t, 500);
  const gone = await startCallbackSink(t, 410);
  const resolver = staticResolver({ work: { url: fn.url } }, 'openfaas-fn');
  const config = configFor(nats.url, { callback: { initialWaitMs: 20, maxWaitMs: 50, maxAttempts: 3 } });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const [failing] = await enqueueMany(gateway.url, 'work', 1, down.url);
  const [goneId] = await enqueueMany(gateway.url, 'work', 1, gone.url);
  await down.waitFor(3);
  await gone.waitFor(1);
  // The dead letters are written right after the last attempt, beyond what the sinks can observe.
  let letters: Array<Record<string, unknown>> = [];
  await eventually(async () => (letters = await deadLetters(nats.url)).length === 2, 'both callback dead letters');
  const byCall = (callId: string | undefined) => letters.find((l) => l.callId === callId);
  t.match(byCall(failing), { reason: 'callbackFailed', attempts: 3, error: /^gave up after 3 attempts; last error: callback failed: receiver answered 500$/ });
  t.match(byCall(goneId), { reason: 'callbackFailed', attempts: 1, error: 'receiver answered 410 (permanent)' });
  t.equal(down.received.length, 3, 'three attempts, then the dead letter');
  t.equal(gone.received.length, 1, '410 on the direct attempt: never asked again');
  t.equal(fn.requests.length, 2, 'each function ran once');
});

t.test('garbage published straight onto the stream lands in the dead letters; the worker keeps serving', async (t) => {
  const { nats, fn, sink, gateway } = await startStack(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const js = jetstream(nc);
  await js.publish('faas-request', new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  const h = natsHeaders();
  h.set('Asyncfn-Version', '7');
  await js.publish('faas-request', new TextEncoder().encode('{}'), { headers: h });

  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'still serving');
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.body.toString(), 'still serving');
  t.equal(fn.requests.length, 1);
  await eventually(async () => (await deadLetters(nats.url)).filter((l) => l.reason === 'poison').length === 2, 'both poison messages to be dead letters');
  t.pass('both poison messages are dead letters');
});

t.test('a queue full of slow jobs does not hold up the default queue', async (t) => {
  const nats = await startNatsServer(t);
  const slowFn = await startFunctionServer(t, slowHandler(2_000));
  const fastFn = await startFunctionServer(t);
  const sink = await startCallbackSink(t);
  const resolver = staticResolver({ slow: { url: slowFn.url, annotations: { 'com.openfaas.queue': 'slow-jobs' } }, fast: { url: fastFn.url } }, 'openfaas-fn');
  const config = configFor(nats.url, {
    worker: {
      queues: [
        { name: 'faas-request', maxInflight: 4, upstreamTimeoutMs: 10_000 },
        { name: 'slow-jobs', maxInflight: 2, upstreamTimeoutMs: 10_000 },
      ],
    },
  });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);

  const started = performance.now();
  await enqueueMany(gateway.url, 'slow', 10, sink.url);
  await slowFn.waitForConcurrent(2);
  const fastIds = await enqueueMany(gateway.url, 'fast', 20, sink.url);
  for (const id of fastIds) await sink.waitForCallId(id);
  const fastDoneMs = performance.now() - started;
  const slowDone = sink.received.filter((r) => !fastIds.includes(String(r.headers['x-call-id']))).length;
  t.equal(slowFn.maxConcurrent, 2, "the slow queue's own max_inflight");
  t.ok(slowDone < 10, `all 20 fast invocations completed while the slow queue still had ${10 - slowDone} of 10 to do`);
  await sink.waitFor(30, 30_000);
  const slowDoneMs = performance.now() - started;
  t.comment(`isolation: 20 default-queue jobs done after ${Math.round(fastDoneMs)} ms; 10 slow-queue jobs (2 s each, 2 at a time) after ${Math.round(slowDoneMs)} ms`);
});

/** A stack whose function "work" is `fn` (a raw server's URL): nats-server, a callback sink, a gateway and a worker in process. */
async function stackCalling(t: Test, fnUrl: string, retry: { maxAttempts: number; initialWaitMs?: number; maxWaitMs?: number }) {
  const nats = await startNatsServer(t);
  const sink = await startCallbackSink(t);
  const resolver = staticResolver({ work: { url: fnUrl } }, 'openfaas-fn');
  const config = configFor(nats.url, { retry });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  return { sink, gateway };
}

t.test('a function whose answer is not valid HTTP/1.1: the attempt fails with the reason, the retry runs, nothing is lost', async (t) => {
  // In the function's place: its first answer frames the body twice, differently; every later one
  // is a proper answer. Each connection carries one request.
  const fn = await startRawHttpServer(t, (socket, connection) =>
    socket.end(
      connection === 1
        ? 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!'
        : 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
    ),
  );
  const { sink, gateway } = await stackCalling(t, fn.url, { maxAttempts: 2, initialWaitMs: 50, maxWaitMs: 100 });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '200', 'the second attempt answered');
  t.equal(callback.body.toString(), 'ok');
  t.equal(callback.headers['x-retry'], '1', 'after one retry');
  t.equal(fn.connections(), 2, 'the function was called once per attempt');
});

t.test('a function whose answer is not valid HTTP/1.1 on every attempt: the callback and the record name the reason', async (t) => {
  const fn = await startRawHttpServer(t, (socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'));
  const { sink, gateway } = await stackCalling(t, fn.url, { maxAttempts: 1 });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '503', 'reported as a function that could not be reached (OpenFaaS)');
  t.match(callback.body.toString(), /could not reach function "work": .*invalid HTTP response: invalid chunk size line "zz"/);
  let record: { state?: string; status?: number; error?: string } = {};
  await eventually(async () => {
    const res = await request(`${gateway.url}/async-function/${callId}`);
    record = (await res.body.json()) as typeof record;
    return record.state === 'deadLettered';
  }, 'the invocation to be recorded as dead-lettered (its one attempt failed)');
  t.equal(record.status, 503);
  t.match(record.error, /invalid HTTP response: invalid chunk size line "zz"/, 'the record names the reason');
});
