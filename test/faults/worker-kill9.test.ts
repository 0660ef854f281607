import t from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { duplicates, enqueueMany } from '../helpers/enqueue.js';
import { slowHandler } from '../helpers/http-servers.js';

t.test('kill -9 of a worker with 50 invocations in flight loses nothing: a new worker completes all 50', async (t) => {
  const { fn, sink, gateway, workerEnv } = await startProcessStack(t, slowHandler(1_000));
  const env = { ...workerEnv, max_inflight: '50', ack_wait: '2s' };

  const first = await spawnAsyncfn(t, 'worker', env);
  const callIds = await enqueueMany(gateway.url, 'work', 50, sink.url);
  await fn.waitForConcurrent(50);
  await first.kill9();
  t.equal(sink.received.length, 0, 'killed while all 50 were still running');

  await spawnAsyncfn(t, 'worker', env);
  await sink.waitFor(50);
  const delivered = new Set(sink.received.map((r) => String(r.headers['x-call-id'])));
  t.same([...delivered].sort(), [...callIds].sort(), 'every accepted invocation got its callback');
  for (const cb of sink.received) t.equal(cb.headers['x-function-status'], '200');
  const dupes = duplicates(sink.received.map((r) => String(r.headers['x-call-id'])));
  t.comment(`function calls: ${fn.requests.length} (50 cut off by the kill + 50 redelivered); duplicate callbacks: ${dupes}`);
});
