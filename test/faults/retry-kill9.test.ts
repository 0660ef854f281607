import t from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { scriptedHandler } from '../helpers/http-servers.js';

t.test('a worker killed with kill -9 during a back-off wait: the retry still happens, once', async (t) => {
  const { fn, sink, gateway, workerEnv } = await startProcessStack(
    t,
    scriptedHandler((n) => ({ status: n === 1 ? 502 : 200 })),
  );
  // The back-off outlasts the dead worker's last pull request (the worker pulls with a 10 s expiry).
  // Were the retry due while that request is still open, JetStream 2.9 could deliver it there, find
  // nobody listening and take the delivery back, delivery count included: the retry would then run
  // as attempt 1 again (still once, but no longer counted).
  const env = {
    ...workerEnv,
    max_retry_attempts: '3',
    initial_retry_wait: '11s',
    max_retry_wait: '11s',
    log_level: 'debug',
  };

  const first = await spawnAsyncfn(t, 'worker', env);
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  // The machine settles as "retryScheduled" only once the server has the nak with its delay.
  await first.waitForLog((l) => l.msg === 'invocation retryScheduled' && l.callId === callId, 'invocation retryScheduled');
  await first.kill9();
  t.equal(fn.requests.length, 1);

  const second = await spawnAsyncfn(t, 'worker', env);
  const callback = await sink.waitForCallId(callId!, 40_000);
  t.equal(callback.headers['x-function-status'], '200');
  t.equal(callback.headers['x-retry'], '1', 'the second attempt, counted by JetStream across workers');
  t.equal(fn.requests.length, 2, 'the function ran twice: the failure and the one retry');
  t.equal(sink.received.length, 1, 'one callback');
  // The worker logs the settlement after the ack, which follows the callback.
  const acked = await second.waitForLog((l) => l.msg === 'invocation acked' && l.callId === callId, 'invocation acked');
  t.equal(acked.attempt, 2, 'the new worker ran attempt 2');
});
