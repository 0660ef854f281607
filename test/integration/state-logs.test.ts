import t from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { scriptedHandler } from '../helpers/http-servers.js';

t.test('with log_level=debug every state an invocation passes through is logged with its call id and attempt', async (t) => {
  const { sink, gateway, workerEnv } = await startProcessStack(
    t,
    scriptedHandler((n) => ({ status: n === 1 ? 503 : 200 })),
  );
  const worker = await spawnAsyncfn(t, 'worker', {
    ...workerEnv,
    log_level: 'debug',
    max_retry_attempts: '2',
    initial_retry_wait: '50ms',
  });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  await worker.waitForLog((l) => l.msg === 'invocation acked' && l.callId === callId, 'invocation acked');

  const states = worker.logs.filter((l) => l.callId === callId && typeof l.state === 'string').map((l) => `${String(l.attempt)}:${String(l.state)}`);
  t.comment(states.join(' '));
  t.same(states, [
    '1:queued',
    '1:invoking',
    '1:retrying',
    '1:retryScheduled',
    '2:queued',
    // A redelivery with adaptive concurrency on (the default) reads its throttled deliveries first.
    '2:recordingAttempt',
    '2:invoking',
    '2:callback',
    '2:settling',
    '2:acked',
  ]);
  const line = worker.logs.find((l) => l.callId === callId && l.state === 'invoking')!;
  t.match(line, { function: 'work', queue: 'faas-request', attempt: 1, msg: 'invocation invoking' });
});
