import t from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { slowHandler } from '../helpers/http-servers.js';

t.test('SIGTERM under load: in-flight work finishes within the grace period, the rest runs after restart', async (t) => {
  const { fn, sink, gateway, workerEnv } = await startProcessStack(t, slowHandler(300));
  const env = { ...workerEnv, max_inflight: '5', shutdown_grace: '30s' };

  const first = await spawnAsyncfn(t, 'worker', env);
  const callIds = await enqueueMany(gateway.url, 'work', 40, sink.url);
  await fn.waitForConcurrent(5);
  const exitCode = await first.terminate();
  t.equal(exitCode, 0, 'the worker exits cleanly');
  t.equal(fn.concurrent, 0, 'no call was left running');
  const doneBeforeExit = sink.received.length;
  t.ok(doneBeforeExit >= 5, `the ${doneBeforeExit} invocations in flight at SIGTERM finished first`);
  t.notOk(
    first.logs.some((l) => l.msg === 'released unfinished invocations back to the queue'),
    'nothing had to be released',
  );

  await spawnAsyncfn(t, 'worker', env);
  await sink.waitFor(40);
  t.same(sink.received.map((r) => String(r.headers['x-call-id'])).sort(), [...callIds].sort(), 'all 40 completed exactly once');
});

t.test('SIGTERM with jobs longer than the grace period: they are released at once, not after ack_wait', async (t) => {
  const { fn, sink, gateway, workerEnv } = await startProcessStack(t, slowHandler(3_000));
  // ack_wait 10 min: a message that was not released would not come back within the test.
  const env = { ...workerEnv, max_inflight: '10', ack_wait: '10m', shutdown_grace: '500ms' };

  const first = await spawnAsyncfn(t, 'worker', env);
  const callIds = await enqueueMany(gateway.url, 'work', 10, sink.url);
  await fn.waitForConcurrent(10);
  t.equal(await first.terminate(), 0, 'the worker exits cleanly');
  const released = first.logs.find((l) => l.msg === 'released unfinished invocations back to the queue');
  t.equal(released?.released, 10, 'all 10 unfinished invocations were released');
  t.equal(sink.received.length, 0);

  await spawnAsyncfn(t, 'worker', env);
  await sink.waitFor(10, 20_000);
  t.same(sink.received.map((r) => String(r.headers['x-call-id'])).sort(), [...callIds].sort(), 'all 10 completed on the next worker');
});
