import { JetStreamApiError } from '@nats-io/jetstream';
import { TimeoutError } from '@nats-io/nats-core';
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { PayloadTooLargeError, QueueUnavailableError } from '../../../src/queue/errors.js';
import { ConfirmTimeoutError, NoStreamError } from '../../../src/queue/confirmer-errors.js';
import { asUnavailable, confirmWithin, deadlineAfter, failureWithin, msLeftFor, remainingMs } from '../../../src/queue/deadline.js';
import { publishOutcomeUnknown } from '../../../src/queue/publisher.js';
import { blockFor } from '../../helpers/blocked-loop.js';

t.test('remainingMs: whole ms left, never negative', async (t) => {
  const d = deadlineAfter(1_000, 500);
  t.same(d, { budgetMs: 1_000, atMs: 1_500 });
  t.equal(remainingMs(d, 500), 1_000);
  t.equal(remainingMs(d, 1_499.5), 0, 'less than a whole ms counts as none');
  t.equal(remainingMs(d, 1_500), 0);
  t.equal(remainingMs(d, 9_000), 0);
});

t.test('confirmWithin: passes the ms left to the round trip as its timeout, and its answer back', async (t) => {
  let now = 100;
  const d = deadlineAfter(1_000, 0);
  const seen: number[] = [];
  const value = await confirmWithin(
    'the publish',
    d,
    async (timeoutMs) => {
      seen.push(timeoutMs);
      return 'ack';
    },
    () => now,
  );
  t.equal(value, 'ack');
  t.same(seen, [900]);
  now = 1_000;
  let started = false;
  const late = await confirmWithin(
    'the publish',
    d,
    async () => {
      started = true;
    },
    () => now,
  ).catch((e: unknown) => e);
  t.type(late, QueueUnavailableError);
  t.notOk(started, 'nothing is sent once the deadline has passed');
  t.equal((late as QueueUnavailableError).outcomeUnknown, false, 'not sent: surely not stored');
  t.match((late as Error).message, /the publish within publish_timeout \(1000 ms\)/);
});

t.test("msLeftFor: the ms left for a round trip that keeps the deadline itself; none left is the deadline's 503, nothing sent", async (t) => {
  const d = deadlineAfter(1_000, 0);
  t.equal(msLeftFor('the publish', d, 100), 900);
  const late = (() => {
    try {
      return msLeftFor('the publish', d, 1_000);
    } catch (err) {
      return err;
    }
  })();
  t.type(late, QueueUnavailableError);
  t.equal((late as QueueUnavailableError).outcomeUnknown, false, 'not sent: surely not stored');
  t.match((late as Error).message, /the publish within publish_timeout \(1000 ms\)/);
});

t.test("failureWithin: the round trip's own time-out is the deadline's (outcome unknown); other failures as asUnavailable", async (t) => {
  const d = deadlineAfter(500, 0);
  const timeout = new ConfirmTimeoutError('asyncfn.default', 500);
  for (const err of [timeout, new QueueUnavailableError('JetStream did not acknowledge the publish in time', { cause: timeout, outcomeUnknown: true })]) {
    const failure = failureWithin('the publish', d, err);
    t.type(failure, QueueUnavailableError);
    t.match(failure, { httpStatus: 503, outcomeUnknown: true, message: /JetStream did not confirm the publish within publish_timeout \(500 ms\)/ });
  }
  const refused = new QueueUnavailableError('no responders');
  t.equal(failureWithin('the publish', d, refused), refused, 'a coded error passes unchanged');
  const noStream = new NoStreamError('asyncfn.default');
  t.equal(failureWithin('the publish', d, noStream), noStream);
  const tooLarge = new PayloadTooLargeError(2, 1);
  t.equal(failureWithin('the publish', d, tooLarge), tooLarge, 'a 413 stays a 413');
  t.match(failureWithin('the publish', d, new Error('socket closed')), { httpStatus: 503, outcomeUnknown: false, message: /socket closed/ });
});

t.test('confirmWithin: a round trip that does not answer in time is a 503 whose outcome is unknown', async (t) => {
  const d = deadlineAfter(30, performance.now());
  const started = performance.now();
  const err = await confirmWithin('the idempotency key', d, () => new Promise<never>(() => undefined)).catch((e: unknown) => e);
  t.type(err, QueueUnavailableError);
  t.equal((err as QueueUnavailableError).httpStatus, 503);
  t.equal((err as QueueUnavailableError).code, 'ASYNCFN_ERR_QUEUE_UNAVAILABLE');
  t.equal((err as QueueUnavailableError).outcomeUnknown, true, 'it was sent and may still be stored');
  t.match((err as Error).message, /the idempotency key/);
  // A bound on behaviour (it did not wait for ever), not a measurement.
  t.ok(performance.now() - started < 5_000, 'settled by the deadline');
});

/** Both ends of one loopback TCP connection. */
async function socketPair(t: Test): Promise<{ near: Socket; far: Socket }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const near = createConnection(port, '127.0.0.1');
  const [[far]] = await Promise.all([accepted, once(near, 'connect')]);
  t.teardown(() => {
    near.destroy();
    far.destroy();
    server.close();
  });
  return { near, far };
}

t.test('confirmWithin: a confirmation that came in time while the event loop was blocked past the deadline wins', async (t) => {
  const { near, far } = await socketPair(t);
  const d = deadlineAfter(30, performance.now());
  const confirmed = confirmWithin('the publish', d, () => once(near, 'data').then(() => 'ack'));
  far.write('PubAck'); // in near's receive buffer at once: loopback TCP delivers within the write
  // Blocked past the deadline, as a gateway is by a long turn: the timer is due before the loop
  // reads the socket that holds the confirmation.
  blockFor(100);
  t.equal(await confirmed, 'ack');
});

t.test('confirmWithin: failures become 503s, coded errors pass unchanged', async (t) => {
  const d = deadlineAfter(10_000, performance.now());
  const plain = await confirmWithin('x', d, async () => {
    throw new Error('jetstream is not enabled');
  }).catch((e: unknown) => e);
  t.type(plain, QueueUnavailableError);
  t.match((plain as Error).message, /jetstream is not enabled/);
  t.type((plain as Error).cause, Error);
  const thrown = await confirmWithin('x', d, () => {
    throw new Error('thrown before any promise');
  }).catch((e: unknown) => e);
  t.type(thrown, QueueUnavailableError, 'a round trip that throws at once is a 503 too, not an exception');
  t.match((thrown as Error).message, /thrown before any promise/);
  const coded = new PayloadTooLargeError(2, 1);
  t.equal(await confirmWithin('x', d, async () => Promise.reject(coded)).catch((e: unknown) => e), coded);
  t.equal(asUnavailable(coded), coded);
  t.type(asUnavailable('text'), QueueUnavailableError);
});

t.test('QueueUnavailableError: outcome known unless said otherwise', async (t) => {
  t.equal(new QueueUnavailableError('down').outcomeUnknown, false);
  t.equal(new QueueUnavailableError('slow', { outcomeUnknown: true }).outcomeUnknown, true);
});

t.test('publishOutcomeUnknown: only a time-out or a lost request may have been stored', async (t) => {
  t.equal(publishOutcomeUnknown(new TimeoutError()), true, 'a time-out: JetStream may have stored it');
  t.equal(publishOutcomeUnknown(new Error('connection closed')), true, 'unknown failures: may have been stored');
  t.equal(publishOutcomeUnknown('odd'), true);
  // What nats.js's js.publish throws on "no responders" (its class is not exported).
  const notEnabled = Object.assign(new Error('jetstream is not enabled'), { name: 'JetStreamNotEnabled' });
  t.equal(publishOutcomeUnknown(notEnabled), false, 'no responders: nobody got it');
  t.equal(publishOutcomeUnknown(new JetStreamApiError({ code: 503, err_code: 10077, description: 'maximum messages exceeded' })), false, 'an error answer: refused');
});
