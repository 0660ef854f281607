import { errors } from '@nats-io/nats-core';
import t from 'tap';
import { QueueUnavailableError, startupFailure } from '../../../src/queue/errors.js';

t.test("startupFailure names nats.js's bare request timeout, and the component that could not start", async (t) => {
  const timeout = new errors.TimeoutError();
  const named = startupFailure('worker', timeout);
  t.type(named, QueueUnavailableError);
  t.equal(
    (named as QueueUnavailableError).message,
    "queue unavailable: NATS did not answer a request of the worker's start-up in time (nats-server overloaded, or JetStream not ready); the worker exits",
  );
  t.equal((named as Error).cause, timeout, 'the original kept as the cause');
  t.match((startupFailure('gateway', timeout) as Error).message, /the gateway's start-up/);
});

t.test('startupFailure passes any other error unchanged', async (t) => {
  const other = new Error('stream "X" has max_age 1s');
  t.equal(startupFailure('gateway', other), other);
  t.equal(startupFailure('worker', 'text'), 'text');
});
