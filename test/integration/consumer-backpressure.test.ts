import { EventEmitter } from 'node:events';
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { CallbackHandOff } from '../../actors/invocation.types.js';
import { startCallbackRetrier, type CallbackEvent } from '../../src/callback/durable.js';
import { handOffCallback } from '../../src/callback/stored.js';
import { connectQueue, type QueueConnection } from '../../src/nats/connection.js';
import { startDelayedScheduler } from '../../src/queue/delayed.js';
import { encodeEnvelope } from '../../src/queue/envelope.js';
import {
  CALLBACK_DURABLE,
  CALLBACK_STREAM,
  DELAYED_STREAM,
  delayedSubject,
  ensureCallbackStream,
  ensureDelayedStream,
  ensureSchedulerConsumer,
  ensureStream,
  queueSpecFor,
  schedulerDurable,
} from '../../src/queue/topology.js';
import { configFor } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { eventually, waitForEvent } from '../helpers/eventually.js';
import { testInvocation } from '../helpers/invocations.js';
import { startNatsServer } from '../helpers/nats-server.js';

/**
 * Issue 12 (one consumer pattern): the delayed scheduler and the durable callback retrier hold no
 * more unprocessed messages than they have free slots. With concurrency N, M ≫ N messages waiting
 * and every handler held on a latch, the consumer's delivered-but-unacked count (num_ack_pending)
 * stays at N: nothing waits in a client buffer burning its ack deadline.
 */

const silent = pino({ level: 'silent' });
/** These messages are all readable: a dead letter would be a bug, and fails the move it came from. */
const noDeadLetter = (): Promise<void> => Promise.reject(new Error('no dead letter was expected'));
const CONCURRENCY = 4;
const WAITING = 40;
/** How many times consumer info is read while the handlers are held. */
const SAMPLES = 5;

/** Handlers that block until released, counting how many have entered. */
function latch() {
  const events = new EventEmitter();
  const gates: Array<() => void> = [];
  let entered = 0;
  let finished = 0;
  let open = false;
  return {
    get entered() {
      return entered;
    },
    /** Blocks the caller until released (at once when the latch is open). */
    async hold(): Promise<void> {
      entered += 1;
      events.emit('change');
      if (!open) {
        const gate = deferred<void>();
        gates.push(() => gate.resolve());
        await gate.promise;
      }
    },
    /** Called by the caller once its work after the hold is done. */
    done(): void {
      finished += 1;
      events.emit('change');
    },
    releaseOne(): void {
      gates.shift()?.();
    },
    releaseAll(): void {
      open = true;
      for (const release of gates.splice(0)) release();
    },
    waitEntered: (n: number) => waitForEvent(events, 'change', () => entered >= n, `${n} handlers entered`, 15_000),
    waitFinished: (n: number) => waitForEvent(events, 'change', () => finished >= n, `${n} handlers finished`, 30_000),
  };
}

async function connect(t: Test): Promise<{ queue: QueueConnection; js: JetStreamClient; jsm: JetStreamManager; url: string }> {
  const nats = await startNatsServer(t);
  const queue = await connectQueue({ url: nats.url, name: 'backpressure-test', logger: silent });
  t.teardown(() => queue.close());
  const jsm = await jetstreamManager(queue.nc);
  return { queue, js: jsm.jetstream(), jsm, url: nats.url };
}

/** Reads consumer info SAMPLES times; returns the highest num_ack_pending and the last num_pending seen. */
async function sample(jsm: JetStreamManager, stream: string, durable: string): Promise<{ maxAckPending: number; pending: number }> {
  let maxAckPending = 0;
  let pending = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const info = await jsm.consumers.info(stream, durable);
    maxAckPending = Math.max(maxAckPending, info.num_ack_pending);
    pending = info.num_pending;
  }
  return { maxAckPending, pending };
}

t.test('the delayed scheduler holds no more due messages than it has slots', async (t) => {
  const { queue, js, jsm, url } = await connect(t);
  const spec = queueSpecFor(configFor(url));
  await ensureStream(jsm, spec, silent);
  await ensureDelayedStream(jsm, { replicas: 1, storage: 'file', duplicateWindowMs: 60_000 }, silent);
  const past = Date.now() - 1_000;
  for (let i = 0; i < WAITING; i++) {
    const { headers, data } = encodeEnvelope(testInvocation({ callId: `d-${i}`, notBeforeMs: past }));
    await js.publish(delayedSubject(spec.subject), data, { headers });
  }

  // Every move onto the queue blocks on the latch: the scheduler's handlers are held.
  const moves = latch();
  const heldJs = new Proxy(js, {
    get(target, prop) {
      if (prop !== 'publish') return Reflect.get(target, prop, target) as unknown;
      return async (...args: Parameters<JetStreamClient['publish']>) => {
        await moves.hold();
        try {
          return await target.publish(...args);
        } finally {
          moves.done();
        }
      };
    },
  });
  const scheduler = await startDelayedScheduler({ queue, js: heldJs, jsm, spec, logger: silent, concurrency: CONCURRENCY, deadLetter: noDeadLetter });

  await moves.waitEntered(CONCURRENCY);
  const held = await sample(jsm, DELAYED_STREAM, schedulerDurable(spec));
  t.equal(moves.entered, CONCURRENCY, `${CONCURRENCY} moves under way, no more`);
  t.ok(held.maxAckPending <= CONCURRENCY, `num_ack_pending ${held.maxAckPending} ≤ ${CONCURRENCY} while the handlers are held`);
  t.equal(held.pending, WAITING - CONCURRENCY, 'the rest still waits in the stream, undelivered');

  // One finishes: exactly one more is pulled.
  moves.releaseOne();
  await moves.waitEntered(CONCURRENCY + 1);
  const after = await sample(jsm, DELAYED_STREAM, schedulerDurable(spec));
  t.equal(moves.entered, CONCURRENCY + 1, 'one slot freed, one more message taken');
  t.ok(after.maxAckPending <= CONCURRENCY, `num_ack_pending ${after.maxAckPending} ≤ ${CONCURRENCY} after a slot freed`);

  moves.releaseAll();
  await moves.waitFinished(WAITING);
  await eventually(async () => (await jsm.streams.info(spec.stream)).state.messages === WAITING, `${WAITING} invocations on the queue`);
  await eventually(async () => (await jsm.consumers.info(DELAYED_STREAM, schedulerDurable(spec))).num_ack_pending === 0, 'every move acked');
  t.equal((await jsm.streams.info(DELAYED_STREAM)).state.messages, 0, 'the delayed stream is empty');
  await scheduler.close();
});

t.test('the delayed scheduler naks a message that is not due with the time it has left, holding no slot', async (t) => {
  const { queue, js, jsm, url } = await connect(t);
  const spec = queueSpecFor(configFor(url));
  await ensureStream(jsm, spec, silent);
  await ensureDelayedStream(jsm, { replicas: 1, storage: 'file', duplicateWindowMs: 60_000 }, silent);
  const nowMs = 1_000_000;
  // Not due for an hour: every one is nak-ed once and stays in the delayed stream.
  for (let i = 0; i < WAITING; i++) {
    const { headers, data } = encodeEnvelope(testInvocation({ callId: `w-${i}`, notBeforeMs: nowMs + 3_600_000 }));
    await js.publish(delayedSubject(spec.subject), data, { headers });
  }
  const scheduler = await startDelayedScheduler({ queue, js, jsm, spec, logger: silent, concurrency: CONCURRENCY, now: () => nowMs, deadLetter: noDeadLetter });
  await eventually(async () => (await jsm.consumers.info(DELAYED_STREAM, schedulerDurable(spec))).num_pending === 0, 'every waiting invocation seen once');
  const info = await jsm.consumers.info(DELAYED_STREAM, schedulerDurable(spec));
  t.equal(info.num_redelivered, 0, 'none came back: each waits out its hour in JetStream');
  t.equal((await jsm.streams.info(spec.stream)).state.messages, 0, 'none moved early');
  t.equal((await jsm.streams.info(DELAYED_STREAM)).state.messages, WAITING, 'all still waiting');
  await scheduler.close();
});

t.test("a scheduler consumer's ack_wait is its queue's ack_wait, at most 30 s", async (t) => {
  const { jsm, url } = await connect(t);
  await ensureDelayedStream(jsm, { replicas: 1, storage: 'file', duplicateWindowMs: 60_000 }, silent);
  // A short ack_wait (what the fault tests use): a scheduler killed holding a message gives it back as soon.
  const short = queueSpecFor(configFor(url, { worker: { ackWaitMs: 2_000 } }), 'short');
  // The default 60 s: capped, the scheduler holds a message for milliseconds only.
  const long = queueSpecFor(configFor(url), 'long');
  for (const spec of [short, long]) await ensureSchedulerConsumer(jsm, spec);
  t.equal((await jsm.consumers.info(DELAYED_STREAM, schedulerDurable(short))).config.ack_wait, 2_000 * 1e6, "ack_wait 2s: the scheduler's is 2 s");
  t.equal((await jsm.consumers.info(DELAYED_STREAM, schedulerDurable(long))).config.ack_wait, 30_000 * 1e6, "ack_wait 60s: the scheduler's is 30 s");
});

t.test('the callback retrier holds no more stored callbacks than it has slots', async (t) => {
  const { queue, js, jsm } = await connect(t);
  await ensureCallbackStream(jsm, { replicas: 1, storage: 'file', ackWaitMs: 30_000 });
  for (let i = 0; i < WAITING; i++) {
    const handOff: CallbackHandOff = {
      invocation: testInvocation({ callId: `cb-${i}`, callbackUrl: 'http://127.0.0.1:9/hook' }),
      outcome: { status: 200, body: new TextEncoder().encode(`result ${i}`), startedAtMs: 0, durationMs: 1 },
      attempt: 1,
      maxAttempts: 5,
      error: 'receiver did not answer',
    };
    await handOffCallback(js, 'faas-request', handOff);
  }

  const deliveries = latch();
  const events: CallbackEvent[] = [];
  const retrier = startCallbackRetrier(
    {
      consumer: await js.consumers.get(CALLBACK_STREAM, CALLBACK_DURABLE),
      policy: { maxAttempts: 5, initialWaitMs: 100, maxWaitMs: 1_000, permanentStatuses: new Set([404, 410]), maxAgeMs: 0 },
      concurrency: CONCURRENCY,
      deliver: async () => {
        await deliveries.hold();
        deliveries.done();
      },
      statusOf: () => undefined,
      deadLetter: async () => undefined,
      onEvent: (event) => events.push(event),
    },
    queue,
  );

  await deliveries.waitEntered(CONCURRENCY);
  const held = await sample(jsm, CALLBACK_STREAM, CALLBACK_DURABLE);
  t.equal(deliveries.entered, CONCURRENCY, `${CONCURRENCY} deliveries under way, no more`);
  t.ok(held.maxAckPending <= CONCURRENCY, `num_ack_pending ${held.maxAckPending} ≤ ${CONCURRENCY} while the handlers are held`);
  t.equal(held.pending, WAITING - CONCURRENCY, 'the rest still waits in the stream, undelivered');

  deliveries.releaseOne();
  await deliveries.waitEntered(CONCURRENCY + 1);
  const after = await sample(jsm, CALLBACK_STREAM, CALLBACK_DURABLE);
  t.equal(deliveries.entered, CONCURRENCY + 1, 'one slot freed, one more callback taken');
  t.ok(after.maxAckPending <= CONCURRENCY, `num_ack_pending ${after.maxAckPending} ≤ ${CONCURRENCY} after a slot freed`);

  deliveries.releaseAll();
  await deliveries.waitFinished(WAITING);
  await retrier.stop();
  t.equal(events.filter((e) => e.result === 'delivered').length, WAITING, 'every callback delivered once');
  t.same(new Set(events.map((e) => e.attempt)), new Set([2]), 'each on its first durable attempt');
  t.equal((await jsm.streams.info(CALLBACK_STREAM)).state.messages, 0, 'the callback stream is empty');
});
