import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { JsMsg } from '@nats-io/jetstream';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { Delivery } from '../../actors/queue.supervisor.js';
import type { QueueConnection } from '../../src/nats/connection.js';
import { encodeEnvelope, type Invocation } from '../../src/queue/envelope.js';
import { fetchSource, pullSource } from '../../src/queue/pull.js';
import { REPO_ROOT } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { testInvocation } from '../helpers/invocations.js';
import { startQueueStream } from '../helpers/queue-stream.js';

/*
 * A pull the supervisor stopped listening to (an idle long poll reclaimed for a busier lane):
 * once nats.js has unsubscribed its inbox, nats-server delivers nothing more to it, so a message
 * published after that goes to the next pull as its first delivery and no attempt is lost. A
 * message already on its way when the pull ends is still handed over (the inbox is drained, not
 * dropped), given back and recorded in the attempt ledger as a first delivery that started no attempt.
 */

/**
 * Publishes one message from another process and returns once it has its PubAck and the server
 * has had a moment to send the message on to a waiting pull. `spawnSync` blocks this process the
 * whole time, so that message waits unread in this process's socket.
 */
const PUBLISH_FROM_ANOTHER_PROCESS = `
import { connect, headers } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
const nc = await connect({ servers: process.env.PUB_NATS_URL });
const h = headers();
for (const [name, values] of JSON.parse(process.env.PUB_HEADERS)) for (const value of values) h.append(name, value);
await jetstream(nc).publish(process.env.PUB_SUBJECT, Buffer.from(process.env.PUB_DATA, 'base64'), { headers: h });
await new Promise((resolve) => setTimeout(resolve, 200));
await nc.close();
`;

const silent = pino({ enabled: false });

/**
 * A nats-server with the default queue's stream and consumer, and one pull of 1 message open on it
 * (the server has it); first deliveries given back as no attempt are recorded in `notAttempts`.
 */
async function openPull(t: Test) {
  const { natsUrl, nc, js, jsm, spec, consumer } = await startQueueStream(t, 1);
  const queue: QueueConnection = { nc, isConnected: () => true, onConnectedChange: () => () => undefined, close: async () => undefined };
  const notAttempts: Invocation[] = [];
  const source = pullSource(
    queue,
    consumer,
    {
      expiresMs: 30_000,
      queueRequests: { defaultNamespace: 'openfaas-fn', maxEventAgeMs: 0 },
      noFirstAttempt: async (invocation) => {
        notAttempts.push(invocation);
      },
    },
    silent,
  );
  const seen: Delivery[] = [];
  const pull = source(1).subscribe({ next: (d) => seen.push(d) });
  await eventually(async () => (await jsm.consumers.info(spec.stream, spec.durable)).num_waiting === 1, 'the pull request at the server');
  return { natsUrl, js, consumer, queue, notAttempts, seen, pull };
}

t.test('a pull ended before a message arrives takes nothing: the next pull gets it as its first delivery', async (t) => {
  const { js, consumer, queue, notAttempts, seen, pull } = await openPull(t);
  pull.unsubscribe();

  const invocation = testInvocation({ callId: randomUUID(), enqueuedAtMs: Date.now() });
  const { headers, data } = encodeEnvelope(invocation);
  await js.publish('faas-request', data, { headers });

  // At once (not after an ack_wait of 60 s), to the new pull.
  const again: JsMsg[] = [];
  const next = fetchSource(queue, consumer, { expiresMs: 10_000 })(1).subscribe({ next: (m) => again.push(m) });
  t.teardown(() => next.unsubscribe());
  await eventually(async () => again.length === 1, 'the message delivered to the new pull', 10_000);
  t.same(seen, [], 'the ended pull handed nothing to the supervisor');
  t.same(notAttempts, [], 'nothing was given back');
  t.equal(again[0]!.info.deliveryCount, 1, 'its first delivery: no attempt spent');
  again[0]!.ack();
});

t.test('a message on its way to a pull when it ends is given back and recorded as no attempt, not lost until ack_wait', async (t) => {
  const { natsUrl, consumer, queue, notAttempts, seen, pull } = await openPull(t);

  const invocation = testInvocation({ callId: randomUUID(), enqueuedAtMs: Date.now() });
  const { headers, data } = encodeEnvelope(invocation);
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  const published = spawnSync(process.execPath, ['--input-type=module', '-e', PUBLISH_FROM_ANOTHER_PROCESS], {
    cwd: REPO_ROOT,
    env: {
      ...env,
      PUB_NATS_URL: natsUrl,
      PUB_SUBJECT: 'faas-request',
      PUB_HEADERS: JSON.stringify([...headers]),
      PUB_DATA: Buffer.from(data).toString('base64'),
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  t.equal(published.status, 0, `published from another process ${published.stderr}`);
  // Ended before this process has read the message the server sent it.
  pull.unsubscribe();

  await eventually(async () => notAttempts.length === 1, 'the delivery given back as no attempt', 10_000);
  t.equal(notAttempts[0]!.callId, invocation.callId, 'recorded under its call id');
  const again: JsMsg[] = [];
  const next = fetchSource(queue, consumer, { expiresMs: 10_000 })(1).subscribe({ next: (m) => again.push(m) });
  t.teardown(() => next.unsubscribe());
  // At once: the consumer's ack_wait is 60 s.
  await eventually(async () => again.length === 1, 'the message delivered to the next pull', 10_000);
  t.same(seen, [], 'the ended pull handed nothing to the supervisor');
  t.equal(again[0]!.info.deliveryCount, 2, 'its second delivery, the first recorded as no attempt in the ledger');
  again[0]!.ack();
});

t.test('a retry that falls due while the only pull request on its consumer has been ended comes at its back-off, as its next delivery', async (t) => {
  const { js, jsm, spec, consumer, nc } = await startQueueStream(t, 1);
  const queue: QueueConnection = { nc, isConnected: () => true, onConnectedChange: () => () => undefined, close: async () => undefined };
  const source = fetchSource(queue, consumer, { expiresMs: 30_000 });
  const invocation = testInvocation({ callId: randomUUID(), enqueuedAtMs: Date.now() });
  const { headers, data } = encodeEnvelope(invocation);
  await js.publish('faas-request', data, { headers });

  const first: JsMsg[] = [];
  const firstPull = source(1).subscribe({ next: (m) => first.push(m) });
  t.teardown(() => firstPull.unsubscribe());
  await eventually(async () => first.length === 1, 'the first delivery');
  const backOffMs = 1_000;
  first[0]!.nak(backOffMs);

  // An idle long poll of the same consumer, ended (reclaimed for a busier lane) before the retry is due.
  const idle = source(1).subscribe({});
  await eventually(async () => (await jsm.consumers.info(spec.stream, spec.durable)).num_waiting === 1, 'the idle pull request at the server');
  idle.unsubscribe();

  // The back-off is a time, not an event: wait it out with no request on the server, and without
  // asking the consumer for its info (which would clear ended requests itself).
  await new Promise((resolve) => setTimeout(resolve, backOffMs + 1_000));
  const again: JsMsg[] = [];
  const next = source(1).subscribe({ next: (m) => again.push(m) });
  t.teardown(() => next.unsubscribe());
  // nats-server before 2.10.16, with the ended request left on it, counts the retry at its back-off
  // without sending it (it comes as delivery 3 after ack_wait, 60 s here), and moves its cursor of
  // new messages back: the next pull gets the same message again as a first delivery.
  await eventually(async () => again.length === 1, 'the retry delivered to the next pull, well before ack_wait', 15_000);
  t.equal(again[0]!.info.deliveryCount, 2, 'its second delivery: not sent again as new (1), nor counted and held until ack_wait (3)');
  again[0]!.ack();
});
