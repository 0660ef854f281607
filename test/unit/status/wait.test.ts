import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { openRecords, type InvocationRecord, type InvocationState, type RecordStore } from '../../../src/status/records.js';
import { isRecordKey, waitForFinal, type RecordsReader } from '../../../src/status/wait.js';
import { keySubscriber, type SubscribeToKey } from '../../../src/status/key-wait.js';
import { startNatsServer } from '../../helpers/nats-server.js';
import { openKvBucket, RECORDS_BUCKET } from '../../../src/queue/topology.js';

const BUCKET = { replicas: 1, storage: 'memory', ttlMs: 3_600_000 } as const;
/** Long enough that resolving at all proves a write, not the timer, ended the wait. */
const LONG_MS = 10 * 60_000;

interface Env {
  nc: NatsConnection;
  kv: KV;
  records: RecordStore;
}

async function setup(t: Test): Promise<Env> {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await openKvBucket(nc, RECORDS_BUCKET, BUCKET);
  return { nc, kv, records: await openRecords(nc, BUCKET) };
}

function record(callId: string, state: InvocationState, over: Partial<InvocationRecord> = {}): InvocationRecord {
  return { callId, function: 'echo', namespace: 'openfaas-fn', queue: 'faas-request', state, attempts: 1, enqueuedAtMs: Date.now(), ...over };
}

async function put(kv: KV, r: InvocationRecord): Promise<void> {
  await kv.put(r.callId, JSON.stringify(r));
}

/**
 * The real bucket, counting reads and subscriptions to a key's writes, telling when the wait is
 * set up (its first read answered: the subscription, sent before it, is in place), each write it
 * sees, and whether the subscription was stopped.
 */
function tracked(kv: KV, nc: NatsConnection) {
  const events = new EventEmitter();
  const calls = { get: 0, subscribe: 0, stop: 0, entries: [] as Array<InvocationRecord | undefined> };
  const reader: RecordsReader = {
    get: async (key) => {
      calls.get += 1;
      const entry = await kv.get(key);
      if (calls.get === 1) events.emit('watching');
      return entry;
    },
  };
  const real = keySubscriber(nc, RECORDS_BUCKET);
  const writes: SubscribeToKey = (key, onWrite) => {
    calls.subscribe += 1;
    const sub = real(key, (value) => {
      const r = value === undefined ? undefined : (JSON.parse(Buffer.from(value).toString()) as InvocationRecord);
      calls.entries.push(r);
      events.emit('entry', r);
      onWrite(value);
    });
    return {
      stop: () => {
        calls.stop += 1;
        sub.stop();
      },
      closed: sub.closed,
    };
  };
  return { reader, writes, calls, events };
}

/** Resolves once the subscription has delivered a record in `state` (checked first, so none is missed). */
async function delivered(tr: ReturnType<typeof tracked>, state: InvocationState): Promise<void> {
  const has = (): boolean => tr.calls.entries.some((e) => e?.state === state);
  while (!has()) await once(tr.events, 'entry');
}

t.test('an invocation already final: resolves with its record from one read, its subscription stopped', async (t) => {
  const { kv, nc } = await setup(t);
  const id = randomUUID();
  const done = record(id, 'succeeded', { status: 200, finishedAtMs: Date.now() });
  await put(kv, done);
  const { reader, writes, calls } = tracked(kv, nc);
  t.same(await waitForFinal(reader, writes, id, LONG_MS), done);
  t.same({ get: calls.get, subscribe: calls.subscribe, stop: calls.stop }, { get: 1, subscribe: 1, stop: 1 });
});

t.test('resolves on the write that makes it final, whatever the timeout: event-driven, no polling', async (t) => {
  const { kv, nc, records } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'queued', { attempts: 0 }));
  const tr = tracked(kv, nc);
  const { reader, writes, calls, events } = tr;
  const watching = once(events, 'watching');
  let resolvedAt = 0;
  const waited = waitForFinal(reader, writes, id, LONG_MS).then((r) => {
    resolvedAt = performance.now();
    return r;
  });
  await watching;

  // A state that is not final does not end the wait.
  await put(kv, record(id, 'running'));
  await delivered(tr, 'running');
  t.equal(resolvedAt, 0, 'still waiting after "running"');

  // The worker writes its records without waiting for JetStream's ack (putUnconfirmed).
  const finalAt = performance.now();
  records.putUnconfirmed(record(id, 'failed', { status: 500, finishedAtMs: Date.now(), error: 'boom' }));
  const result = await waited;
  const latencyMs = resolvedAt - finalAt;
  t.comment(`resolved ${latencyMs.toFixed(1)} ms after the final write (timeout ${LONG_MS} ms)`);

  t.equal(result?.state, 'failed');
  t.equal(result?.error, 'boom');
  t.ok(latencyMs < LONG_MS / 1000, 'resolved right after the write, not at the timeout');
  t.same({ get: calls.get, subscribe: calls.subscribe }, { get: 1, subscribe: 1 }, 'one read, one subscription: nothing polled');
  t.equal(calls.stop, 1, 'the subscription was stopped');
});

t.test('a final write racing the first read is not missed', async (t) => {
  const { kv, nc } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  // The record turns final once the first read is answered: the subscription, made before the read,
  // sees that write, so it resolves anyway.
  const reader: RecordsReader = {
    get: async (key) => {
      const entry = await kv.get(key);
      await put(kv, record(id, 'cancelled', { finishedAtMs: Date.now() }));
      return entry;
    },
  };
  t.equal((await waitForFinal(reader, keySubscriber(nc, RECORDS_BUCKET), id, LONG_MS))?.state, 'cancelled');
});

t.test('times out with the record as it is then, and stops the subscription', async (t) => {
  const { kv, nc } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'queued', { attempts: 0 }));
  const tr = tracked(kv, nc);
  const { reader, writes, calls, events } = tr;
  const watching = once(events, 'watching');
  const waited = waitForFinal(reader, writes, id, 2_000);
  await watching;
  await put(kv, record(id, 'retrying', { attempts: 1, status: 502 }));
  await delivered(tr, 'retrying');

  const result = await waited;
  t.equal(result?.state, 'retrying', 'the latest state, not final');
  t.equal(result?.status, 502);
  t.equal(calls.stop, 1, 'the subscription was stopped');
});

t.test('an unknown call id: undefined once the time is up', async (t) => {
  const { kv, nc } = await setup(t);
  const { reader, writes, calls } = tracked(kv, nc);
  t.equal(await waitForFinal(reader, writes, randomUUID(), 300), undefined);
  t.equal(calls.subscribe, 1);
  t.equal(calls.stop, 1, 'the subscription was stopped');
});

t.test('a record created during the wait is followed until final', async (t) => {
  const { kv, nc } = await setup(t);
  const id = randomUUID();
  const { reader, writes, events } = tracked(kv, nc);
  const watching = once(events, 'watching');
  const waited = waitForFinal(reader, writes, id, LONG_MS);
  await watching;
  await put(kv, record(id, 'queued', { attempts: 0 }));
  await put(kv, record(id, 'deadLettered', { attempts: 3 }));
  t.equal((await waited)?.state, 'deadLettered');
});

t.test('aborting rejects with the reason and stops the subscription', async (t) => {
  const { kv, nc } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  const { reader, writes, calls, events } = tracked(kv, nc);
  const controller = new AbortController();
  const watching = once(events, 'watching');
  const waited = waitForFinal(reader, writes, id, LONG_MS, controller.signal);
  await watching;
  const reason = new Error('client went away');
  controller.abort(reason);
  await t.rejects(waited, reason);
  t.equal(calls.stop, 1, 'the subscription was stopped');

  // A write after the abort changes nothing (the promise is settled, nothing leaks).
  await put(kv, record(id, 'succeeded'));
});

t.test('an already aborted signal rejects before any read', async (t) => {
  const { kv, nc } = await setup(t);
  const { reader, writes, calls } = tracked(kv, nc);
  await t.rejects(waitForFinal(reader, writes, randomUUID(), LONG_MS, AbortSignal.abort(new Error('gone'))), { message: 'gone' });
  t.same({ get: calls.get, subscribe: calls.subscribe }, { get: 0, subscribe: 0 });
});

t.test('timeout 0 reads the record once; a negative timeout is a RangeError', async (t) => {
  const { kv, nc } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  const { reader, writes, calls } = tracked(kv, nc);
  t.equal((await waitForFinal(reader, writes, id, 0))?.state, 'running');
  t.same({ get: calls.get, subscribe: calls.subscribe }, { get: 1, subscribe: 0 });
  await t.rejects(waitForFinal(reader, writes, id, -1), RangeError);
  await t.rejects(waitForFinal(reader, writes, id, Number.NaN), RangeError);
});

t.test('a call id that cannot be a key resolves undefined at once: a wildcard never matches other records', async (t) => {
  const { kv, nc } = await setup(t);
  await put(kv, record('a.b', 'succeeded'));
  const { reader, writes, calls } = tracked(kv, nc);
  for (const id of ['a.*', '>', 'a b', '', '.a', 'a..b']) {
    t.notOk(isRecordKey(id), id);
    t.equal(await waitForFinal(reader, writes, id, LONG_MS), undefined, id);
  }
  t.same({ get: calls.get, subscribe: calls.subscribe }, { get: 0, subscribe: 0 });
  t.ok(isRecordKey('a.b') && isRecordKey(randomUUID()) && isRecordKey('my_id-1=x'));
  // `/` is in no call id and in every group's key (queued-groups.ts): a group is never read as a record.
  t.notOk(isRecordKey('my_id-1=/x'));
  t.notOk(isRecordKey('g/0b6a7c1e-2f3d-4e5f'));
});

t.test('a deleted record reads as undefined', async (t) => {
  const { kv, nc } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  await kv.delete(id);
  t.equal(await waitForFinal(kv, keySubscriber(nc, RECORDS_BUCKET), id, 200), undefined);
});

t.test('the connection closing during the wait rejects (it never resolves as if timed out)', async (t) => {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  const kv = await openKvBucket(nc, RECORDS_BUCKET, BUCKET);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  const { reader, writes, events } = tracked(kv, nc);
  const watching = once(events, 'watching');
  const waited = waitForFinal(reader, writes, id, LONG_MS);
  await watching;
  await nc.close();
  await t.rejects(waited);
});

t.test('waits leave no JetStream consumer on the bucket, however they end: answered, timed out, aborted', async (t) => {
  const { kv, nc, records } = await setup(t);
  const jsm = await jetstreamManager(nc);
  const consumers = async (): Promise<number> => (await jsm.streams.info(`KV_${RECORDS_BUCKET}`)).state.consumer_count;
  const writes = keySubscriber(nc, RECORDS_BUCKET);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  const gets: Array<() => void> = [];
  // Reads that tell when they were answered: every wait is then set up.
  const reader: RecordsReader = {
    get: async (key) => {
      const entry = await kv.get(key);
      gets.shift()?.();
      return entry;
    },
  };
  const setUp = (n: number): Promise<void[]> => Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve) => gets.push(resolve))));

  const aborts = Array.from({ length: 10 }, () => new AbortController());
  const ready = setUp(50);
  const answered = Array.from({ length: 30 }, () => waitForFinal(reader, writes, id, LONG_MS));
  const timedOut = Array.from({ length: 10 }, () => waitForFinal(reader, writes, id, 1));
  const aborted = aborts.map((c) => waitForFinal(reader, writes, id, LONG_MS, c.signal).catch((err: unknown) => err));
  await ready;
  for (const c of aborts) c.abort(new Error('client went away'));
  t.same(new Set((await Promise.all(timedOut)).map((r) => r?.state)), new Set(['running']), 'the timed-out waits answer the record as it is');
  t.same(new Set((await Promise.all(aborted)).map((e) => (e as Error).message)), new Set(['client went away']));
  records.putUnconfirmed(record(id, 'succeeded', { status: 200, finishedAtMs: Date.now() }));
  t.same(new Set((await Promise.all(answered)).map((r) => r?.state)), new Set(['succeeded']), 'every waiter got the final record at once');
  t.equal(await consumers(), 0, 'no consumer left on the bucket');
});
