import t from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import type { Handler } from '../helpers/http-servers.js';

/*
 * A function whose call takes its worker down (an answer too large for the worker's memory, a
 * crash in a native module; here the test kills the worker with kill -9 while the call runs).
 * Each redelivery records its attempt before the call. An attempt past max_attempts runs once
 * (a stalled attempt: its worker died, nothing answered), as BullMQ recovers a stalled job once;
 * the next delivery is dead-lettered instead of run: the function does not take every worker down
 * in turn, forever (BullMQ's "job stalled more than allowable limit").
 *
 * A spare worker is pulling before each kill, so that the redelivery (after ack_wait) finds a live
 * pull request: on nats-server before 2.10.16 a redelivery that falls due while only a dead
 * worker's requests wait is mishandled (sent to the next pull as a first delivery).
 */
t.test('a function that kills every worker calling it is called max_attempts + 1 times, then dead-lettered without another call', async (t) => {
  // Never answers: the worker calling it is killed while the call runs.
  const hang: Handler = () => new Promise<void>(() => undefined);
  const { fn, sink, gateway, workerEnv } = await startProcessStack(t, hang);
  const env = { ...workerEnv, max_retry_attempts: '3', ack_wait: '2s', initial_retry_wait: '100ms', max_retry_wait: '100ms' };

  let caller = await spawnAsyncfn(t, 'worker', env);
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  // Attempts 1 to 3, and the one stalled attempt allowed past max_attempts.
  for (let call = 1; call <= 4; call++) {
    await fn.waitForRequests(call);
    const spare = await spawnAsyncfn(t, 'worker', env);
    await caller.kill9();
    caller = spare;
  }

  const callback = await sink.waitForCallId(callId!, 30_000);
  t.equal(callback.headers['x-function-status'], '500', 'reported as failed');
  t.equal(callback.headers['x-retry'], '3', 'after its 4 attempts');
  t.equal(fn.requests.length, 4, 'called once per attempt, never a fifth time');
  const settled = await caller.waitForLog((l) => l.msg === 'invocation deadLettered' && l.callId === callId, 'invocation deadLettered');
  t.equal(settled.deadLetter, 'retriesExhausted');
  t.equal(settled.attempt, 4);
});
