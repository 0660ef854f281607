import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { millis, type NatsConnection } from '@nats-io/nats-core';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { connectNats } from '../../src/nats/connection.js';
import { CANCELLATIONS_BUCKET, openKvBucket, PAYLOAD_BUCKET, payloadStreamName, RECORDS_BUCKET, RESULTS_BUCKET } from '../../src/queue/topology.js';
import type { InvocationRecord } from '../../src/status/records.js';
import { configFor, resolverFor, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { readAnswer, type JsonAnswer } from '../helpers/json-answer.js';
import { startNatsServer } from '../helpers/nats-server.js';

/*
 * records_ttl stands for 7 days, max_delay for 30: a cancellation and a record must last as long as
 * a scheduled invocation can still be delivered, and a worker must forget a marker the bucket forgot.
 */

async function connect(t: Test, url: string): Promise<NatsConnection> {
  const nc = await connectNats({ url }, { name: 'cancel-ttl-test' });
  t.teardown(() => nc.close());
  return nc;
}

async function call(method: 'GET' | 'DELETE' | 'POST', url: string, headers: Record<string, string> = {}): Promise<JsonAnswer> {
  return readAnswer(await request(url, { method, headers }));
}

/** Resolves once a key written now to a bucket aged `records_ttl` (the results) is gone: records_ttl has passed since. */
async function recordsTtlPassed(results: KV): Promise<void> {
  const key = `ttl-probe-${process.hrtime.bigint()}`;
  await results.put(key, 'x');
  await eventually(async () => (await results.get(key))?.operation !== 'PUT', 'records_ttl to pass', 30_000);
}

t.test('a scheduled invocation cancelled: after records_ttl its record still answers, and a worker started then skips it', async (t) => {
  const { nats, fn, sink, config, resolver, gateway } = await startStack(t, { worker: false, config: { records: { ttlMs: 1000, maxDelayMs: 4000 } } });
  const nc = await connect(t, nats.url);
  const results = await new Kvm(nc).open(RESULTS_BUCKET);

  const posted = await call('POST', `${gateway.url}/async-function/work`, { 'x-delay-seconds': '3', 'x-callback-url': `${sink.url}/` });
  t.equal(posted.status, 202);
  const callId = posted.headers['x-call-id'] as string;
  t.equal((await call('DELETE', `${gateway.url}/async-function/${callId}`)).status, 202);
  await recordsTtlPassed(results);

  const read = await call('GET', `${gateway.url}/async-function/${callId}`);
  t.equal(read.status, 200, 'the record of an invocation still scheduled answers past records_ttl');
  t.equal((read.json as InvocationRecord).state, 'scheduled');
  t.equal((await call('DELETE', `${gateway.url}/async-function/${callId}`)).status, 202, 'and it can be cancelled (again)');

  // A worker started (a restart, a deploy) after records_ttl: the marker is still there when it comes due.
  await startTestWorker(t, config, resolver);
  const callback = await sink.waitForCallId(callId);
  t.equal(callback.headers['x-function-status'], '499', 'cancelled, not run');
  t.equal(fn.requests.length, 0);
});

t.test('a worker forgets a marker the bucket forgot: a new invocation reusing the call id runs', async (t) => {
  const { nats, fn, sink, gateway } = await startStack(t, { config: { records: { ttlMs: 1000, maxDelayMs: 1000 } } });
  const nc = await connect(t, nats.url);
  const markers = await new Kvm(nc).open(CANCELLATIONS_BUCKET);
  const callId = `reused-${process.hrtime.bigint()}`;

  const first = await call('POST', `${gateway.url}/async-function/work`, { 'x-call-id': callId, 'x-delay-seconds': '1', 'x-callback-url': `${sink.url}/` });
  t.equal(first.headers['x-call-id'], callId);
  t.equal((await call('DELETE', `${gateway.url}/async-function/${callId}`)).status, 202);
  t.equal((await sink.waitForCallId(callId)).headers['x-function-status'], '499');

  const recordUrl = `${gateway.url}/async-function/${callId}`;
  await eventually(async () => ((await call('GET', recordUrl)).json as InvocationRecord | undefined)?.state === 'cancelled', 'the record cancelled');
  // The buckets forget both (no event tells the worker), then the README lets the call id be used again.
  await eventually(async () => (await call('GET', recordUrl)).status === 404, 'the record expired', 30_000);
  await eventually(async () => (await markers.get(callId))?.operation !== 'PUT', 'the marker expired', 30_000);
  const second = await call('POST', `${gateway.url}/async-function/work`, { 'x-call-id': callId, 'x-callback-url': `${sink.url}/` });
  t.equal(second.status, 202);
  t.equal(second.headers['x-call-id'], callId, 'the same call id');
  const callbacks = await sink.waitFor(2);
  t.equal(callbacks[1]!.headers['x-function-status'], '200', 'it ran: nobody cancelled it');
  t.equal(fn.requests.length, 1);
});

t.test('buckets made with a shorter age limit are widened to records_ttl + max_delay at startup', async (t) => {
  const nats = await startNatsServer(t);
  const nc = await connect(t, nats.url);
  const old = { replicas: 1, storage: 'file' as const, ttlMs: 1000 };
  await openKvBucket(nc, RECORDS_BUCKET, old);
  await openKvBucket(nc, CANCELLATIONS_BUCKET, old);
  const config = configFor(nats.url, { records: { ttlMs: 1000, maxDelayMs: 4000 } });
  await startTestGateway(t, config, resolverFor({}));
  const jsm = await jetstreamManager(nc);
  for (const stream of [`KV_${RECORDS_BUCKET}`, `KV_${CANCELLATIONS_BUCKET}`, payloadStreamName(PAYLOAD_BUCKET)]) {
    t.equal(millis((await jsm.streams.info(stream)).config.max_age), 5000, `${stream}: records_ttl + max_delay`);
  }
  t.equal(millis((await jsm.streams.info(`KV_${RESULTS_BUCKET}`)).config.max_age), 1000, 'kept results: records_ttl');
  // A worker started with a smaller max_delay leaves the wider limit.
  await startTestWorker(t, configFor(nats.url, { records: { ttlMs: 1000, maxDelayMs: 1000 } }), resolverFor({}));
  t.equal(millis((await jsm.streams.info(`KV_${CANCELLATIONS_BUCKET}`)).config.max_age), 5000, 'never narrowed');
});
