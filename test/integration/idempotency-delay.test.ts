import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t from 'tap';
import { request } from 'undici';
import { DELAYED_STREAM } from '../../src/queue/topology.js';
import { configFor, resolverFor, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

/** Issue 7: idempotency keys and delayed invocations, against a real nats-server. */

t.test('100 concurrent submits with one Idempotency-Key: one execution, one call id for all', async (t) => {
  const stack = await startStack(t);
  const submit = async () => {
    const res = await request(`${stack.gateway.url}/async-function/work`, {
      method: 'POST',
      body: 'charge',
      headers: { 'idempotency-key': 'order-42', 'x-callback-url': stack.sink.url },
    });
    await res.body.dump();
    return { status: res.statusCode, callId: String(res.headers['x-call-id']), replayed: res.headers['idempotent-replayed'] === 'true' };
  };
  const answers = await Promise.all(Array.from({ length: 100 }, submit));
  t.same(new Set(answers.map((a) => a.status)), new Set([202]), 'every request was accepted');
  const ids = new Set(answers.map((a) => a.callId));
  t.equal(ids.size, 1, 'all 100 answers carry the same call id');
  t.equal(answers.filter((a) => !a.replayed).length, 1, 'exactly one answer is the original; 99 say Idempotent-Replayed');
  const [callId] = ids;
  await stack.sink.waitForCallId(callId!);
  // A later repeat, once it ran, still maps to it and still does not run it again.
  const late = await submit();
  t.equal(late.callId, callId);
  // The record is final: one more invocation would have had to be queued before it.
  const status = await request(`${stack.gateway.url}/async-function/${callId}?wait=5s`);
  t.match(await status.body.json(), { state: 'succeeded', attempts: 1 });
  t.equal(stack.fn.requests.length, 1, 'the function ran once for 101 requests');
  t.equal(stack.sink.received.length, 1, 'one callback');
  t.comment(`101 submits with one key → ${stack.fn.requests.length} execution, ${ids.size} call id`);

  const other = await request(`${stack.gateway.url}/async-function/work`, { method: 'POST', headers: { 'idempotency-key': 'order-43' } });
  t.not(String(other.headers['x-call-id']), callId, 'another key is another invocation');
  await other.body.dump();
  const bad = await request(`${stack.gateway.url}/async-function/work`, { method: 'POST', headers: { 'idempotency-key': 'k'.repeat(256) } });
  t.equal(bad.statusCode, 400);
  await bad.body.dump();
});

t.test('a delayed invocation does not start early, and starts after a worker and nats-server restart in between', async (t) => {
  const nats = await startNatsServer(t);
  let startedAtMs = Number.NaN;
  const fn = await startFunctionServer(t, (_req, res) => {
    startedAtMs = Date.now();
    res.writeHead(200).end('done');
  });
  const sink = await startCallbackSink(t);
  const resolver = resolverFor({ work: fn.url });
  const config = configFor(nats.url);
  const gateway = await startTestGateway(t, config, resolver);
  let worker = await startTestWorker(t, config, resolver);

  const delayMs = 3_000;
  const res = await request(`${gateway.url}/async-function/work`, {
    method: 'POST',
    body: 'later',
    headers: { 'x-delay-seconds': String(delayMs / 1000), 'x-callback-url': sink.url },
  });
  const submittedAt = Date.now();
  t.equal(res.statusCode, 202);
  await res.body.dump();
  const callId = String(res.headers['x-call-id']);
  const scheduled = await request(`${gateway.url}/async-function/${callId}`);
  const record = (await scheduled.body.json()) as { state: string; notBeforeMs: number };
  t.equal(record.state, 'scheduled', 'the record shows it as scheduled');
  t.ok(record.notBeforeMs >= submittedAt + delayMs - 1_000, 'with the time it may run');

  // While it waits: the worker goes, nats-server restarts, a new worker comes.
  await worker.close(0);
  await nats.restart();
  worker = await startTestWorker(t, config, resolver);

  const callback = await sink.waitForCallId(callId, 30_000);
  t.equal(fn.requests.length, 1, 'it ran once');
  // The gateway and the function share this process's clock.
  t.ok(startedAtMs >= record.notBeforeMs, `not before its time: started ${startedAtMs - record.notBeforeMs} ms after X-Delay-Seconds allowed`);
  t.equal(callback.headers['x-retry'], '0', 'waiting did not count as an attempt');
  t.comment(`delayed ${delayMs} ms: started ${startedAtMs - record.notBeforeMs} ms after its time, across a worker and a nats-server restart`);
});

t.test('X-Not-Before in the past runs now; bad delays are 400', async (t) => {
  const stack = await startStack(t);
  const past = await request(`${stack.gateway.url}/async-function/work`, {
    method: 'POST',
    headers: { 'x-not-before': 'Sun, 06 Nov 1994 08:49:37 GMT', 'x-callback-url': stack.sink.url },
  });
  t.equal(past.statusCode, 202);
  await past.body.dump();
  await stack.sink.waitForCallId(String(past.headers['x-call-id']));
  for (const headers of [{ 'x-delay-seconds': 'soon' }, { 'x-not-before': 'tomorrow' }, { 'x-delay-seconds': String(31 * 86_400) }]) {
    const res = await request(`${stack.gateway.url}/async-function/work`, { method: 'POST', headers });
    t.equal(res.statusCode, 400, JSON.stringify(headers));
    t.match(await res.body.text(), /X-Delay-Seconds|X-Not-Before|max_delay/);
  }
});

/** Messages stored in `stream` now. */
async function storedMessages(natsUrl: string, stream: string): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}

t.test('an Idempotency-Key repeat with another delay than the first stores no second copy: the function runs once', async (t) => {
  // No worker yet: what the two streams hold after the requests is all there is to run.
  const stack = await startStack(t, { worker: false });
  const submit = async (key: string, body: string, delaySeconds?: number) => {
    const res = await request(`${stack.gateway.url}/async-function/work`, {
      method: 'POST',
      body,
      headers: { 'idempotency-key': key, 'x-callback-url': stack.sink.url, ...(delaySeconds === undefined ? {} : { 'x-delay-seconds': String(delaySeconds) }) },
    });
    await res.body.dump();
    t.equal(res.statusCode, 202, `${key}: ${body}`);
    return { callId: String(res.headers['x-call-id']), replayed: res.headers['idempotent-replayed'] === 'true' };
  };
  const stored = async () => ({ queue: await storedMessages(stack.nats.url, 'faas-request'), delayed: await storedMessages(stack.nats.url, DELAYED_STREAM) });

  // Immediate first, delayed repeat: the repeat's copy goes where the first went, and is dropped there.
  const now = await submit('now-then-later', 'first');
  const nowRepeat = await submit('now-then-later', 'repeat', 3_600);
  t.same(nowRepeat, { callId: now.callId, replayed: true });
  t.same(await stored(), { queue: 1, delayed: 0 }, 'one copy, in the queue');

  // Delayed first, immediate repeat: the repeat keeps the first's schedule.
  const later = await submit('later-then-now', 'first-delayed', 3_600);
  const laterRepeat = await submit('later-then-now', 'repeat-now');
  t.same(laterRepeat, { callId: later.callId, replayed: true });
  t.same(await stored(), { queue: 1, delayed: 1 }, 'one copy, still delayed');
  const record = await request(`${stack.gateway.url}/async-function/${later.callId}`);
  t.match(await record.body.json(), { state: 'scheduled' }, 'the repeat did not make it queued');

  // A worker runs what is due: the first request of the first key, once, with its own body.
  await startTestWorker(t, stack.config, stack.resolver);
  await stack.sink.waitForCallId(now.callId);
  t.same(
    stack.fn.requests.map((r) => r.body.toString()),
    ['first'],
    'the function ran once, with the first body',
  );
  // (The queue's copy is acked after its callback: it may still be there.)
  t.equal(await storedMessages(stack.nats.url, DELAYED_STREAM), 1, 'the delayed one still waits, alone');
});
