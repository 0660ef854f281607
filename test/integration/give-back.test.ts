import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import t from 'tap';
import type { Delivery } from '../../actors/queue.supervisor.js';
import { testConfig } from '../../src/config/index.js';
import type { QueueConnection } from '../../src/nats/connection.js';
import { encodeEnvelope, type Invocation } from '../../src/queue/envelope.js';
import { fetchSource, pullSource } from '../../src/queue/pull.js';
import { ensureConsumer, ensureStream, queueSpecFor } from '../../src/queue/topology.js';
import { eventually } from '../helpers/eventually.js';
import { testInvocation } from '../helpers/invocations.js';
import { startNatsServer } from '../helpers/nats-server.js';

/*
 * A pull the supervisor stopped listening to (an idle long poll reclaimed for a busier lane):
 * once nats.js has unsubscribed its inbox, nats-server delivers nothing more to it, so a message
 * published after that goes to the next pull as its first delivery and no attempt is lost. (A
 * message already on its way is given back and counted as no attempt:
 * test/unit/queue/give-back.test.ts.)
 */

const silent = pino({ enabled: false });
const config = testConfig();

t.test('a pull ended before a message arrives takes nothing: the next pull gets it as its first delivery', async (t) => {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const spec = { ...queueSpecFor(config), storage: 'memory' as const };
  await ensureStream(jsm, spec, silent);
  await ensureConsumer(jsm, spec, 1, silent);
  const consumer = await js.consumers.get(spec.stream, spec.durable);
  const queue: QueueConnection = { nc, isConnected: () => true, onConnectedChange: () => () => undefined, close: async () => undefined };

  const notAttempts: Invocation[] = [];
  const source = pullSource(
    queue,
    consumer,
    {
      expiresMs: 30_000,
      queueRequests: { defaultNamespace: 'openfaas-fn', maxEventAgeMs: 0 },
      notAnAttempt: async (invocation) => {
        notAttempts.push(invocation);
      },
    },
    silent,
  );
  const seen: Delivery[] = [];
  const pull = source(1).subscribe({ next: (d) => seen.push(d) });
  await eventually(async () => (await jsm.consumers.info(spec.stream, spec.durable)).num_waiting === 1, 'the pull request at the server');
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
