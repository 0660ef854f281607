import t from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { duplicates, enqueueMany } from '../helpers/enqueue.js';
import { deferred } from '../helpers/deferred.js';

t.test('kill -9 of a worker with 50 invocations in flight loses nothing: a new worker completes all 50', async (t) => {
  // The function holds every call until the first worker is dead, so all 50 are surely in flight
  // when it is killed however slowly they were enqueued; afterwards it answers at once.
  const killed = deferred<void>();
  const { fn, sink, gateway, workerEnv } = await startProcessStack(t, async (_req, res) => {
    await killed.promise;
    if (!res.destroyed) res.writeHead(200).end('done');
  });
  const env = { ...workerEnv, max_inflight: '50', ack_wait: '2s' };

  const first = await spawnAsyncfn(t, 'worker', env);
  const callIds = await enqueueMany(gateway.url, 'work', 50, sink.url);
  await fn.waitForConcurrent(50);
  await first.kill9();
  t.equal(sink.received.length, 0, 'killed while all 50 were still running');
  killed.resolve();

  await spawnAsyncfn(t, 'worker', env);
  // At least once: a callback may come twice, so the wait is for every call id's, not for 50 callbacks.
  await sink.waitForDistinct(50, (cb) => String(cb.headers['x-call-id']));
  const delivered = new Set(sink.received.map((r) => String(r.headers['x-call-id'])));
  t.same([...delivered].sort(), [...callIds].sort(), 'every accepted invocation got its callback');
  for (const cb of sink.received) t.equal(cb.headers['x-function-status'], '200');
  const dupes = duplicates(sink.received.map((r) => String(r.headers['x-call-id'])));
  t.comment(`function calls: ${fn.requests.length} (50 cut off by the kill + 50 redelivered); duplicate callbacks: ${dupes}`);
});
