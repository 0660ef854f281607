import { createServer } from 'node:http';
import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { connectNats } from '../../src/nats/connection.js';
import { CANCELLATIONS_BUCKET } from '../../src/queue/topology.js';
import { cancellationRequests } from '../../src/status/cancellations.js';
import type { InvocationRecord } from '../../src/status/records.js';
import { configFor, resolverFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { eventually, within } from '../helpers/eventually.js';
import { listen, startCallbackSink, startFunctionServer, type RecordedRequest } from '../helpers/http-servers.js';
import { readAnswer, type JsonAnswer } from '../helpers/json-answer.js';
import { startNatsServer } from '../helpers/nats-server.js';

/*
 * A DELETE that comes after the function answered (while the callback is posted) is answered 202
 * and changes nothing: the invocation ends as its answer decides. Its marker must not outlive the
 * invocation: a dead letter replayed later runs, it is not cancelled by it.
 */

async function connect(t: Test, url: string): Promise<NatsConnection> {
  const nc = await connectNats({ url }, { name: 'cancel-late-test' });
  t.teardown(() => nc.close());
  return nc;
}

async function call(method: 'GET' | 'DELETE' | 'POST', url: string, opts: { headers?: Record<string, string>; json?: unknown } = {}): Promise<JsonAnswer> {
  const headers = { ...opts.headers, ...(opts.json === undefined ? {} : { 'content-type': 'application/json' }) };
  return readAnswer(await request(url, { method, headers, body: opts.json === undefined ? undefined : JSON.stringify(opts.json) }));
}

async function recordOf(gatewayUrl: string, callId: string): Promise<InvocationRecord | undefined> {
  const answer = await call('GET', `${gatewayUrl}/async-function/${callId}`);
  return answer.status === 200 ? (answer.json as InvocationRecord) : undefined;
}

/** Resolves when the marker of `callId` is deleted (or purged) from the bucket. */
async function markerDeleted(kv: KV, callId: string): Promise<void> {
  const watch = await kv.watch({ key: callId });
  try {
    for await (const entry of watch as AsyncIterable<KvWatchEntry>) if (entry.operation !== 'PUT') return;
  } finally {
    watch.stop();
  }
}

/** A callback receiver that holds the first callback until `release()`; the others are answered at once. */
async function startHeldSink(t: Test) {
  const received: RecordedRequest[] = [];
  const arrived = deferred<void>();
  const released = deferred<void>();
  const next: Array<(r: RecordedRequest) => void> = [];
  const server = createServer(async (raw, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of raw) chunks.push(chunk as Buffer);
    const req = { method: raw.method ?? '', url: raw.url ?? '', headers: raw.headers, body: Buffer.concat(chunks) };
    received.push(req);
    if (received.length === 1) {
      arrived.resolve();
      await released.promise;
    }
    res.writeHead(200).end();
    next.splice(0).forEach((resolve) => resolve(req));
  });
  const url = await listen(t, server);
  return {
    url,
    received,
    arrived: arrived.promise,
    release: () => released.resolve(),
    /** The next callback answered. */
    nextAnswered: () => new Promise<RecordedRequest>((resolve) => next.push(resolve)),
  };
}

t.test('a DELETE after the function answered: 202, the invocation ends as answered, its marker is deleted, and a replay of its dead letter runs', async (t) => {
  const nats = await startNatsServer(t);
  const hung = deferred<void>();
  const aborted = deferred<void>();
  const fn = await startFunctionServer(t, (req, res) => {
    if (!req.url.startsWith('/hang')) return void res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
    hung.resolve();
    res.once('close', () => aborted.resolve());
  });
  const sink = await startHeldSink(t);
  // Two slots: one held in the callback, one for the invocation whose abort tells the worker read the marker.
  const config = configFor(nats.url, { worker: { maxInflight: 2 }, callback: { firstAttemptTimeoutMs: 60_000, timeoutMs: 60_000 } });
  const resolver = resolverFor({ work: fn.url });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const nc = await connect(t, nats.url);
  const markers = await new Kvm(nc).open(CANCELLATIONS_BUCKET);

  const posted = await call('POST', `${gateway.url}/async-function/work`, { headers: { 'x-callback-url': `${sink.url}/` } });
  t.equal(posted.status, 202);
  const callId = posted.headers['x-call-id'] as string;
  // The function answered 500 (its only attempt): the worker dead-lettered it and now posts the callback.
  await within(sink.arrived, 30_000, 'the callback of the failed invocation');
  const late = await call('DELETE', `${gateway.url}/async-function/${callId}`);
  t.equal(late.status, 202, 'the record is not final yet: the DELETE is accepted');

  // The worker reads markers in the order they are written: once it aborts an invocation cancelled
  // after this one, it has read this one's marker too.
  const other = await call('POST', `${gateway.url}/async-function/work/hang`);
  await within(hung.promise, 30_000, 'the second invocation running');
  t.equal((await call('DELETE', `${gateway.url}/async-function/${other.headers['x-call-id'] as string}`)).status, 202);
  await within(aborted.promise, 30_000, 'the second invocation aborted');

  const deleted = markerDeleted(markers, callId);
  sink.release();
  await within(deleted, 30_000, 'the marker of the invocation that ended otherwise deleted');
  const first = sink.received[0]!;
  t.equal(first.headers['x-function-status'], '500', 'the callback told what the function answered, not 499');
  await eventually(async () => (await recordOf(gateway.url, callId))?.state === 'deadLettered', 'the record deadLettered');

  const answered = sink.nextAnswered();
  const replay = await call('POST', `${gateway.url}/system/dead-letters/replay`, { json: { function: 'work' } });
  t.equal(replay.status, 200, replay.text);
  t.match(replay.json, { replayed: 1 });
  const again = await within(answered, 30_000, 'the callback of the replay');
  t.equal(again.headers['x-call-id'], callId);
  t.equal(again.headers['x-function-status'], '500', 'the replay ran the function (it fails again), it was not cancelled');
  t.equal(fn.requests.filter((r) => !r.url.startsWith('/hang')).length, 2, 'the function ran for the invocation and for its replay');
  await eventually(async () => (await recordOf(gateway.url, callId))?.state === 'deadLettered', 'the replay recorded deadLettered, not cancelled');
});

t.test('a marker older than a replayed dead letter (its DELETE raced the settlement) does not cancel the replay', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, (_req, res) => void res.writeHead(500, { 'content-type': 'text/plain' }).end('boom'));
  const sink = await startCallbackSink(t);
  const config = configFor(nats.url);
  const resolver = resolverFor({ work: fn.url });
  const gateway = await startTestGateway(t, config, resolver);
  const first = await startTestWorker(t, config, resolver);
  const nc = await connect(t, nats.url);

  const posted = await call('POST', `${gateway.url}/async-function/work`, { headers: { 'x-callback-url': `${sink.url}/` } });
  const callId = posted.headers['x-call-id'] as string;
  await sink.waitForCallId(callId);
  let record: InvocationRecord | undefined;
  await eventually(async () => (record = await recordOf(gateway.url, callId))?.state === 'deadLettered', 'the record deadLettered');
  await first.close(0);

  // The marker of a DELETE the worker read only after it had settled the invocation, as of the time it finished.
  await cancellationRequests(await new Kvm(nc).open(CANCELLATIONS_BUCKET), () => record!.finishedAtMs!).request(callId, record!.enqueuedAtMs);
  const replay = await call('POST', `${gateway.url}/system/dead-letters/replay`, { json: { function: 'work' } });
  t.match(replay.json, { replayed: 1 }, replay.text);
  // A worker reads every marker before its first delivery.
  await startTestWorker(t, config, resolver);
  const callbacks = await sink.waitFor(2);
  t.equal(callbacks[1]!.headers['x-call-id'], callId);
  t.equal(callbacks[1]!.headers['x-function-status'], '500', 'the replay ran, it was not cancelled (499)');
  t.equal(fn.requests.length, 2);
});
