import t from 'tap';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { request } from 'undici';
import { startStack, type Stack } from '../helpers/asyncfn.js';
import { EventEmitter } from 'node:events';
import { scriptedHandler, slowHandler, type Handler } from '../helpers/http-servers.js';
import { waitForEvent } from '../helpers/eventually.js';
import type { InvocationRecord, InvocationState } from '../../src/status/records.js';
import { jetstreamManager } from '@nats-io/jetstream';
import { BATCHES_BUCKET, RECORDS_BUCKET } from '../../src/queue/topology.js';

/** Issue 7: records, the status API with long-poll, and kept results, against a real nats-server. */

const FAST_RETRIES = { retry: { maxAttempts: 3, initialWaitMs: 50, maxWaitMs: 50, retryStatuses: [502] } };

async function submit(stack: Stack, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(`${stack.gateway.url}/async-function/work`, {
    method: 'POST',
    body: 'payload',
    headers: { 'x-callback-url': stack.sink.url, ...headers },
  });
  t.equal(res.statusCode, 202, await res.body.text());
  return String(res.headers['x-call-id']);
}

/**
 * Every state the record of `callId` takes, in order, as a KV watch sees them, until a final one.
 * The watch starts before the invocation exists (keys are call ids the test chooses).
 */
async function watchStates(stack: Stack, callId: string) {
  const nc = await connect({ servers: stack.nats.url });
  t.teardown(() => nc.close());
  const kv = await new Kvm(nc).open(RECORDS_BUCKET);
  const watch = await kv.watch({ key: callId });
  const seen: InvocationState[] = [];
  const events = new EventEmitter();
  const states = (async () => {
    for await (const entry of watch) {
      if (entry.operation !== 'PUT') continue;
      const record = entry.json<InvocationRecord>();
      seen.push(record.state);
      events.emit('state');
      if (['succeeded', 'failed', 'cancelled', 'deadLettered'].includes(record.state)) break;
    }
    watch.stop();
    return seen;
  })();
  /** Resolves once the record has been in `state`. */
  const reached = (state: InvocationState) => waitForEvent(events, 'state', () => seen.includes(state), `the record to be ${state}`, 15_000);
  return { states, reached };
}

type Watched = Awaited<ReturnType<typeof watchStates>>;

async function statesOf(handler: Handler, action?: (stack: Stack, callId: string, watched: Watched) => Promise<void>) {
  const stack = await startStack(t, { handler, config: FAST_RETRIES });
  const callId = `states.${Math.random().toString(36).slice(2)}`;
  const watched = await watchStates(stack, callId);
  await submit(stack, { 'x-call-id': callId });
  await action?.(stack, callId, watched);
  return watched.states;
}

t.test('record transitions, in order', async (t) => {
  t.same(await statesOf(slowHandler(1_000)), ['queued', 'running', 'succeeded'], 'success (slow enough to be seen running)');
  t.same(await statesOf(scriptedHandler((n) => ({ status: n === 1 ? 502 : 200 }))), ['queued', 'retrying', 'succeeded'], 'retry, then success');
  t.same(await statesOf(scriptedHandler(() => ({ status: 500 }))), ['queued', 'failed'], 'non-retryable failure');
  t.same(await statesOf(scriptedHandler(() => ({ status: 502 }))), ['queued', 'retrying', 'retrying', 'deadLettered'], 'retries exhausted');
  t.same(
    await statesOf(slowHandler(30_000), async (stack, callId, watched) => {
      await watched.reached('running');
      const res = await request(`${stack.gateway.url}/async-function/${callId}`, { method: 'DELETE' });
      t.equal(res.statusCode, 202);
      await res.body.dump();
    }),
    ['queued', 'running', 'cancelled'],
    'cancelled while running',
  );
});

async function getStatus(stack: Stack, callId: string, query = ''): Promise<{ status: number; record: InvocationRecord; ms: number }> {
  const started = performance.now();
  const res = await request(`${stack.gateway.url}/async-function/${callId}${query}`);
  const text = await res.body.text();
  return { status: res.statusCode, record: res.statusCode === 200 ? (JSON.parse(text) as InvocationRecord) : (text as never), ms: performance.now() - started };
}

t.test('GET /async-function/<call-id>: the record as JSON; unknown ids 404; a function name 405', async (t) => {
  const stack = await startStack(t);
  const callId = await submit(stack);
  await stack.sink.waitForCallId(callId);
  const { status, record } = await getStatus(stack, callId, '?wait=10s');
  t.equal(status, 200);
  t.match(record, { callId, function: 'work', namespace: 'openfaas-fn', queue: 'faas-request', state: 'succeeded', attempts: 1, status: 200 });
  t.type(record.enqueuedAtMs, 'number');
  t.type(record.finishedAtMs, 'number');
  t.type(record.durationMs, 'number');

  const unknown = await request(`${stack.gateway.url}/async-function/no-such-call`);
  t.equal(unknown.statusCode, 404);
  t.match(await unknown.body.text(), 'no invocation with call id "no-such-call"');
  const fnName = await request(`${stack.gateway.url}/async-function/work`);
  t.equal(fnName.statusCode, 405, 'GET on a function name stays 405, as in OpenFaaS');
  t.equal(fnName.headers.allow, 'GET, POST, DELETE');
  await fnName.body.dump();
  const badWait = await request(`${stack.gateway.url}/async-function/${callId}?wait=soon`);
  t.equal(badWait.statusCode, 400);
  await badWait.body.dump();
});

t.test('1,000 concurrent submits, each followed at once by a GET: every 202 reads queued (or later)', async (t) => {
  // The gateway's queued records (one group per turn, queued-groups.ts) ride ahead of the
  // invocations (one confirmation per 202): the 202 still comes only after the record is readable.
  const stack = await startStack(t);
  const states = await Promise.all(
    Array.from({ length: 1_000 }, async (_, i) => {
      const res = await request(`${stack.gateway.url}/async-function/work`, { method: 'POST', body: `n${i}`, headers: { 'x-callback-url': stack.sink.url } });
      await res.body.dump();
      if (res.statusCode !== 202) return `POST ${res.statusCode}`;
      const { status, record } = await getStatus(stack, String(res.headers['x-call-id']));
      return status === 200 ? record.state : `GET ${status}`;
    }),
  );
  const counts: Record<string, number> = {};
  for (const state of states) counts[state] = (counts[state] ?? 0) + 1;
  t.same(
    Object.keys(counts).filter((s) => !['queued', 'running', 'succeeded'].includes(s)),
    [],
    `every GET found the record: ${JSON.stringify(counts)}`,
  );
});

t.test('long-poll: answers as soon as the invocation finishes; times out with the current state', async (t) => {
  const stack = await startStack(t, { handler: slowHandler(1_000) });
  const callId = await submit(stack);
  const waited = getStatus(stack, callId, '?wait=30s');
  const callback = stack.sink.waitForCallId(callId).then(() => performance.now());
  const { status, record } = await waited;
  const answeredAt = performance.now();
  t.equal(status, 200);
  t.equal(record.state, 'succeeded', 'the long-poll returned the final record');
  t.comment(`long-poll answered ${(answeredAt - (await callback)).toFixed(1)} ms after the callback arrived (wait was 30 s)`);

  const slow = await submit(stack);
  const timedOut = await getStatus(stack, slow, '?wait=300ms');
  t.equal(timedOut.status, 200, 'a timed-out wait still answers 200 with the record');
  t.ok(['queued', 'running'].includes(timedOut.record.state), `not final yet: ${timedOut.record.state}`);
  // The gateway's deadline is whole milliseconds of Date.now(), and node starts a timer from the
  // event loop's cached time, which is older than the handler by however long its turn has run:
  // on a loaded box the wait can end a few ms short of 300 ms on this client's clock (299.6 once).
  t.ok(timedOut.ms >= 295, `waited the 300 ms, to the timer's precision (${timedOut.ms.toFixed(1)} ms)`);
});

t.test('long-polls leave no JetStream consumer on the server: timed out, answered, and a batch wait too', async (t) => {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const stack = await startStack(t, {
    handler: async (_req, res) => {
      await released;
      res.writeHead(200).end('ok');
    },
  });
  const nc = await connect({ servers: stack.nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const consumers = async (bucket: string): Promise<number> => (await jsm.streams.info(`KV_${bucket}`)).state.consumer_count;

  const callId = await submit(stack);
  const timedOut = await Promise.all(Array.from({ length: 20 }, () => getStatus(stack, callId, '?wait=50ms')));
  t.same(new Set(timedOut.map((r) => r.status)), new Set([200]));
  t.notOk(
    timedOut.some((r) => ['succeeded', 'failed'].includes(r.record.state)),
    'not final yet',
  );
  t.equal(await consumers(RECORDS_BUCKET), 0, '20 timed-out waits left no consumer');

  const batch = await request(`${stack.gateway.url}/async-batch/work`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{"body":"x"}\n' });
  t.equal(batch.statusCode, 202);
  const { batchId } = (await batch.body.json()) as { batchId: string };
  const batchWait = await request(`${stack.gateway.url}/async-batch/${batchId}?wait=50ms`);
  t.match(await batchWait.body.json(), { batchId, done: false });
  t.equal(await consumers(BATCHES_BUCKET), 0, 'a timed-out batch wait left no consumer');

  // Waits still answer as soon as it is final.
  const answered = Array.from({ length: 20 }, () => getStatus(stack, callId, '?wait=1m'));
  const batchDone = request(`${stack.gateway.url}/async-batch/${batchId}?wait=1m`).then(async (res) => (await res.body.json()) as { done: boolean });
  release();
  t.same(new Set((await Promise.all(answered)).map((r) => r.record.state)), new Set(['succeeded']), 'every waiter got the final record');
  t.match(await batchDone, { done: true }, 'the batch wait answered once the batch was done');
  t.same({ records: await consumers(RECORDS_BUCKET), batches: await consumers(BATCHES_BUCKET) }, { records: 0, batches: 0 }, 'none left after the answered waits');
});

t.test('kept results: served with the function status and content type; refused when not asked or too large', async (t) => {
  const stack = await startStack(t, {
    handler: scriptedHandler((n) => ({ status: 201, headers: { 'content-type': 'application/x-thing' }, body: n === 3 ? 'x'.repeat(64) : `result ${n}` })),
    config: { records: { resultMaxBytes: 32 } },
  });
  const kept = await submit(stack, { 'x-store-result': 'true' });
  const { record } = await getStatus(stack, kept, '?wait=10s');
  t.match(record.result, { stored: true, status: 201, contentType: 'application/x-thing', bytes: 8 });
  const res = await request(`${stack.gateway.url}/async-function/${kept}/result`);
  t.equal(res.statusCode, 201);
  t.equal(res.headers['content-type'], 'application/x-thing');
  // Served from the console's origin, so inert: a sandboxed document runs no script (an HTML result is the function's, or a caller's echoed).
  t.equal(res.headers['content-security-policy'], "sandbox; default-src 'none'", 'sandboxed');
  t.equal(res.headers['x-content-type-options'], 'nosniff', 'its type not sniffed');
  t.equal(await res.body.text(), 'result 1');

  const notAsked = await submit(stack);
  await getStatus(stack, notAsked, '?wait=10s');
  const none = await request(`${stack.gateway.url}/async-function/${notAsked}/result`);
  t.equal(none.statusCode, 404);
  t.match(await none.body.text(), 'keeping it was not asked');

  const big = await submit(stack, { 'x-store-result': 'true' });
  const bigRecord = (await getStatus(stack, big, '?wait=10s')).record;
  t.match(bigRecord.result, { stored: false, bytes: 64, reason: /larger than result_max_size/ });
  const tooBig = await request(`${stack.gateway.url}/async-function/${big}/result`);
  t.equal(tooBig.statusCode, 404);
  t.match(await tooBig.body.text(), 'was not kept: larger than result_max_size');
});
