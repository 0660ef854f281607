import type { ConsumeCallback, Consumer, ConsumerCallbackFn, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { pino } from 'pino';
import t from 'tap';
import type { Delivery } from '../../../actors/queue.supervisor.js';
import type { QueueConnection } from '../../../src/nats/connection.js';
import { encodeEnvelope, type Invocation } from '../../../src/queue/envelope.js';
import { fetchSource, pullSource } from '../../../src/queue/pull.js';
import { deferred } from '../../helpers/deferred.js';
import { testInvocation } from '../../helpers/invocations.js';

/*
 * A message nats.js had already queued for a pull when the supervisor ended it (an idle long poll
 * reclaimed for a busier lane) still reaches the pull's callback after close(): JetStream
 * has counted that delivery. It is given back unworked; a first delivery's is first recorded in the
 * attempt ledger as having started no attempt (a redelivery without an entry would take attempt 1
 * as made), so an invocation does not lose an attempt to the race. A later delivery needs no entry:
 * its attempt is recorded only when one starts (actors/attempt.policy.ts).
 */

const silent = pino({ enabled: false });
const queue: QueueConnection = { nc: undefined as never, isConnected: () => true, onConnectedChange: () => () => undefined, close: async () => undefined };

/** A message as nats.js hands it over, recording its nak. */
function fakeMessage(invocation: Invocation, events: string[], deliveryCount = 1): JsMsg {
  const { headers, data } = encodeEnvelope(invocation);
  return {
    headers,
    data,
    info: { pending: 0, deliveryCount, stream: 'faas-request', streamSequence: 1 },
    timestampNanos: BigInt(Date.now()) * 1_000_000n,
    nak: () => events.push('nak'),
  } as unknown as JsMsg;
}

/**
 * A consumer whose one pull hands over what the test pushes, also after close() (as nats.js hands
 * over what it had received before the close), to the pull's callback as nats.js does, and ends
 * when the test says so.
 */
function fakeConsumer(events: string[]) {
  let callback: ConsumerCallbackFn | undefined;
  const closed = deferred<void>();
  const fetched = deferred<void>();
  const messages = {
    close: async () => {
      events.push('close');
    },
    closed: () => closed.promise,
  } as unknown as ConsumerMessages;
  const consumer = {
    fetch: async (opts: ConsumeCallback) => {
      callback = opts.callback;
      // Resolved once the pull source waits for the pull's end (a macrotask after fetch() returned).
      setImmediate(() => fetched.resolve());
      return messages;
    },
  } as unknown as Consumer;
  return {
    consumer,
    fetched: fetched.promise,
    push: (msg: JsMsg) => void callback!(msg),
    end: () => closed.resolve(),
  };
}

/**
 * A pull source over a fake consumer whose one pull the supervisor has already ended (an idle
 * long poll reclaimed); `push` then hands it a message as nats.js would after the close.
 */
async function endedPull(events: string[], noFirstAttempt: (invocation: Invocation) => Promise<void>) {
  const { consumer, fetched, push, end } = fakeConsumer(events);
  const source = pullSource(queue, consumer, { expiresMs: 1_000, queueRequests: { defaultNamespace: 'openfaas-fn', maxEventAgeMs: 0 }, noFirstAttempt }, silent);
  const seen: Delivery[] = [];
  const pull = source(1).subscribe({ next: (d) => seen.push(d) });
  await fetched;
  pull.unsubscribe();
  return { push, end, seen };
}

/** Lets the give-back run until it has nak-ed (a few turns at most). */
async function untilNaked(events: string[]): Promise<void> {
  for (let i = 0; i < 10 && !events.includes('nak'); i++) await new Promise((resolve) => setImmediate(resolve));
}

t.test('pullSource: a first delivery yielded after the supervisor ended the pull is recorded as no attempt, then nak-ed; the supervisor never sees it', async (t) => {
  const events: string[] = [];
  const counted = deferred<Invocation>();
  const release = deferred<void>();
  const { push, end, seen } = await endedPull(events, async (invocation) => {
    events.push('counted');
    counted.resolve(invocation);
    await release.promise;
  });
  const invocation = testInvocation({ callId: 'late-1', enqueuedAtMs: 1_700_000_000_000 });
  push(fakeMessage(invocation, events));
  const got = await counted.promise;
  t.same([got.callId, got.enqueuedAtMs], [invocation.callId, invocation.enqueuedAtMs], 'recorded under its call id and enqueue time (the ledger key)');
  t.same(events, ['close', 'counted'], 'not given back before the entry is stored: the next delivery must read it');
  release.resolve();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(events, ['close', 'counted', 'nak'], 'then nak-ed, so JetStream delivers it again at once');
  t.same(seen, [], 'the supervisor got nothing');
  end();
});

t.test('pullSource: an entry that cannot be stored still gives the message back', async (t) => {
  const events: string[] = [];
  const { push, end } = await endedPull(events, async () => {
    throw new Error('KV down');
  });
  push(fakeMessage(testInvocation({ callId: 'late-2' }), events));
  await untilNaked(events);
  t.same(events, ['close', 'nak']);
  end();
});

t.test('fetchSource without a giveBack: such a message is nak-ed at once (callbacks, the delayed scheduler)', async (t) => {
  const events: string[] = [];
  const { consumer, fetched, push, end } = fakeConsumer(events);
  const seen: JsMsg[] = [];
  const pull = fetchSource(queue, consumer, { expiresMs: 1_000 })(1).subscribe({ next: (m) => seen.push(m) });
  await fetched;
  pull.unsubscribe();
  push(fakeMessage(testInvocation({ callId: 'late-3' }), events));
  await untilNaked(events);
  // The pull's close is on its way while the message comes in: either may be first.
  t.same([...events].sort(), ['close', 'nak'], 'nak-ed, and the pull closed');
  t.same(seen, []);
  end();
});

t.test('pullSource: a redelivery yielded after the pull ended is nak-ed at once, with nothing recorded (it started no attempt, and no entry says it did)', async (t) => {
  const events: string[] = [];
  const { push, end } = await endedPull(events, async () => {
    events.push('recorded');
  });
  push(fakeMessage(testInvocation({ callId: 'late-3' }), events, 3));
  await untilNaked(events);
  t.same(events, ['close', 'nak']);
  end();
});
