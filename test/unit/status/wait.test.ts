import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { openRecords, type InvocationRecord, type InvocationState, type RecordStore } from '../../../src/status/records.js';
import { isRecordKey, waitForFinal, type RecordsReader } from '../../../src/status/wait.js';
import { startNatsServer } from '../../helpers/nats-server.js';
import { openKvBucket, RECORDS_BUCKET } from '../../../src/queue/topology.js';

const BUCKET = { replicas: 1, storage: 'memory', ttlMs: 3_600_000 } as const;
/** Long enough that resolving at all proves the watch, not the timer, ended the wait. */
const LONG_MS = 10 * 60_000;

interface Env {
  kv: KV;
  records: RecordStore;
}

async function setup(t: Test): Promise<Env> {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await openKvBucket(nc, RECORDS_BUCKET, BUCKET);
  return { kv, records: await openRecords(nc, BUCKET) };
}

function record(callId: string, state: InvocationState, over: Partial<InvocationRecord> = {}): InvocationRecord {
  return { callId, function: 'echo', namespace: 'openfaas-fn', queue: 'faas-request', state, attempts: 1, enqueuedAtMs: Date.now(), ...over };
}

async function put(kv: KV, r: InvocationRecord): Promise<void> {
  await kv.put(r.callId, JSON.stringify(r));
}

/**
 * The real bucket, counting reads and watches, telling when a watch is running and when it
 * delivers an entry, and whether it was stopped.
 */
function tracked(kv: KV) {
  const events = new EventEmitter();
  const calls = { get: 0, watch: 0, stop: 0, entries: [] as KvWatchEntry[] };
  const reader: RecordsReader = {
    get: (key) => {
      calls.get += 1;
      return kv.get(key);
    },
    watch: async (opts) => {
      calls.watch += 1;
      const w = await kv.watch(opts);
      const wrapped: QueuedIterator<KvWatchEntry> = {
        async *[Symbol.asyncIterator]() {
          for await (const entry of w) {
            calls.entries.push(entry);
            events.emit('entry', entry);
            yield entry;
          }
        },
        stop: (err?: Error) => {
          calls.stop += 1;
          w.stop(err);
        },
        getProcessed: () => w.getProcessed(),
        getPending: () => w.getPending(),
        getReceived: () => w.getReceived(),
      };
      events.emit('watching');
      return wrapped;
    },
  };
  return { reader, calls, events };
}

/** Resolves once the watch has delivered a record in `state` (checked first, so none is missed). */
async function delivered(tr: ReturnType<typeof tracked>, state: InvocationState): Promise<void> {
  const has = (): boolean => tr.calls.entries.some((e) => e.operation === 'PUT' && e.json<InvocationRecord>().state === state);
  while (!has()) await once(tr.events, 'entry');
}

t.test('an invocation already final: resolves with its record from one read, no watch', async (t) => {
  const { kv } = await setup(t);
  const id = randomUUID();
  const done = record(id, 'succeeded', { status: 200, finishedAtMs: Date.now() });
  await put(kv, done);
  const { reader, calls } = tracked(kv);
  t.same(await waitForFinal(reader, id, LONG_MS), done);
  t.same({ get: calls.get, watch: calls.watch }, { get: 1, watch: 0 });
});

t.test('resolves on the write that makes it final, whatever the timeout: event-driven, no polling', async (t) => {
  const { kv, records } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'queued', { attempts: 0 }));
  const tr = tracked(kv);
  const { reader, calls, events } = tr;
  const watching = once(events, 'watching');
  let resolvedAt = 0;
  const waited = waitForFinal(reader, id, LONG_MS).then((r) => {
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
  t.same({ get: calls.get, watch: calls.watch }, { get: 1, watch: 1 }, 'one read, one watch: nothing polled');
  t.equal(calls.stop, 1, 'the watch was stopped');
});

t.test('a final write racing the start of the watch is not missed', async (t) => {
  const { kv } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  // The record turns final after the first read but before the watch exists: the watch's first
  // entry is the current value, so it resolves anyway.
  const reader: RecordsReader = {
    get: async (key) => {
      const entry = await kv.get(key);
      await put(kv, record(id, 'cancelled', { finishedAtMs: Date.now() }));
      return entry;
    },
    watch: (opts) => kv.watch(opts),
  };
  t.equal((await waitForFinal(reader, id, LONG_MS))?.state, 'cancelled');
});

t.test('times out with the record as it is then, and stops the watch', async (t) => {
  const { kv } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'queued', { attempts: 0 }));
  const tr = tracked(kv);
  const { reader, calls, events } = tr;
  const watching = once(events, 'watching');
  const waited = waitForFinal(reader, id, 2_000);
  await watching;
  await put(kv, record(id, 'retrying', { attempts: 1, status: 502 }));
  await delivered(tr, 'retrying');

  const result = await waited;
  t.equal(result?.state, 'retrying', 'the latest state, not final');
  t.equal(result?.status, 502);
  t.equal(calls.stop, 1, 'the watch was stopped');
});

t.test('an unknown call id: undefined once the time is up', async (t) => {
  const { kv } = await setup(t);
  const { reader, calls } = tracked(kv);
  t.equal(await waitForFinal(reader, randomUUID(), 300), undefined);
  t.equal(calls.watch, 1);
  t.equal(calls.stop, 1, 'the watch was stopped');
});

t.test('a record created during the wait is followed until final', async (t) => {
  const { kv } = await setup(t);
  const id = randomUUID();
  const { reader, events } = tracked(kv);
  const watching = once(events, 'watching');
  const waited = waitForFinal(reader, id, LONG_MS);
  await watching;
  await put(kv, record(id, 'queued', { attempts: 0 }));
  await put(kv, record(id, 'deadLettered', { attempts: 3 }));
  t.equal((await waited)?.state, 'deadLettered');
});

t.test('aborting rejects with the reason and stops the watch', async (t) => {
  const { kv } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  const { reader, calls, events } = tracked(kv);
  const controller = new AbortController();
  const watching = once(events, 'watching');
  const waited = waitForFinal(reader, id, LONG_MS, controller.signal);
  await watching;
  const reason = new Error('client went away');
  controller.abort(reason);
  await t.rejects(waited, reason);
  t.equal(calls.stop, 1, 'the watch was stopped');

  // A write after the abort changes nothing (the promise is settled, nothing leaks).
  await put(kv, record(id, 'succeeded'));
});

t.test('an already aborted signal rejects before any read', async (t) => {
  const { kv } = await setup(t);
  const { reader, calls } = tracked(kv);
  await t.rejects(waitForFinal(reader, randomUUID(), LONG_MS, AbortSignal.abort(new Error('gone'))), { message: 'gone' });
  t.same({ get: calls.get, watch: calls.watch }, { get: 0, watch: 0 });
});

t.test('timeout 0 reads the record once; a negative timeout is a RangeError', async (t) => {
  const { kv } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  const { reader, calls } = tracked(kv);
  t.equal((await waitForFinal(reader, id, 0))?.state, 'running');
  t.same({ get: calls.get, watch: calls.watch }, { get: 1, watch: 0 });
  await t.rejects(waitForFinal(reader, id, -1), RangeError);
  await t.rejects(waitForFinal(reader, id, Number.NaN), RangeError);
});

t.test('a call id that cannot be a key resolves undefined at once: a wildcard never matches other records', async (t) => {
  const { kv } = await setup(t);
  await put(kv, record('a.b', 'succeeded'));
  const { reader, calls } = tracked(kv);
  for (const id of ['a.*', '>', 'a b', '', '.a', 'a..b']) {
    t.notOk(isRecordKey(id), id);
    t.equal(await waitForFinal(reader, id, LONG_MS), undefined, id);
  }
  t.same({ get: calls.get, watch: calls.watch }, { get: 0, watch: 0 });
  t.ok(isRecordKey('a.b') && isRecordKey(randomUUID()) && isRecordKey('my_id-1=x'));
  // `/` is in no call id and in every group's key (queued-groups.ts): a group is never read as a record.
  t.notOk(isRecordKey('my_id-1=/x'));
  t.notOk(isRecordKey('g/0b6a7c1e-2f3d-4e5f'));
});

t.test('a deleted record reads as undefined', async (t) => {
  const { kv } = await setup(t);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  await kv.delete(id);
  t.equal(await waitForFinal(kv, id, 200), undefined);
});

t.test('the connection closing during the wait rejects (it never resolves as if timed out)', async (t) => {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  const kv = await openKvBucket(nc, RECORDS_BUCKET, BUCKET);
  const id = randomUUID();
  await put(kv, record(id, 'running'));
  const { reader, events } = tracked(kv);
  const watching = once(events, 'watching');
  const waited = waitForFinal(reader, id, LONG_MS);
  await watching;
  await nc.close();
  await t.rejects(waited);
});
