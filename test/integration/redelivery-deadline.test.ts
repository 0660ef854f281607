import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t from 'tap';
import { startNatsServer } from '../helpers/nats-server.js';

/*
 * What the worker relies on when JetStream delivers an invocation again while it still runs here
 * (actors/queue.supervisor.ts, a second delivery of a call id in flight): the consumer keeps one
 * ack deadline per stream message, moved by the reply of any of its deliveries. So the running
 * attempt's handle (the first delivery) still extends and settles the message, and the second
 * delivery must not be nak-ed: a nak with a delay pulls that one deadline in to the delay, even
 * right after an extension, and the message comes back (to any worker) once it passes.
 */

// nats.js asks for pull requests of at least 1 s; each wait below is shorter than ack_wait.
const ACK_WAIT_MS = 4_000;
const SHORTER_THAN_ACK_WAIT_MS = 1_500;

t.test('one deadline per message: a nak of a later delivery pulls it in; the first delivery still settles the message', async (t) => {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({ name: 'R', subjects: ['r.>'], retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add('R', { durable_name: 'w', ack_policy: AckPolicy.Explicit, ack_wait: ACK_WAIT_MS * 1e6, max_deliver: -1 });
  const consumer = await js.consumers.get('R', 'w');
  await js.publish('r.job', 'job');

  const first = await consumer.next({ expires: 5_000 });
  t.equal(first?.info.deliveryCount, 1);
  // Nothing extends the deadline: JetStream delivers the message again once ack_wait has passed.
  const second = await consumer.next({ expires: 5_000 });
  t.equal(second?.seq, first?.seq, 'the same stream message');
  t.equal(second?.info.deliveryCount, 2);

  // Extended through the first delivery's reply, then nak-ed with a short delay through the second:
  // the message is back well before ack_wait.
  first!.working();
  second!.nak(200);
  const third = await consumer.next({ expires: SHORTER_THAN_ACK_WAIT_MS });
  t.equal(third?.info.deliveryCount, 3, 'the nak of the later delivery moved the deadline the extension had set');

  // Kept in flight, as the worker now keeps a second delivery: a working() through it, 2 s after it
  // came, moves the one deadline a whole ack_wait away from then (1 s of margin either way).
  t.equal(await consumer.next({ expires: 2_000 }), null, 'nothing within the first 2 s');
  third!.working();
  t.equal(await consumer.next({ expires: 3_000 }), null, 'not delivered again (without the working(), back 2 s into this wait)');

  // The running attempt's handle settles the message, whatever deliveries came after it.
  t.equal(await first!.ackAck(), true, 'the ack of the first delivery is taken');
  const info = await jsm.consumers.info('R', 'w');
  t.equal(info.num_ack_pending, 0, 'nothing left unacked');
  t.equal(info.num_pending, 0, 'nothing left to deliver');
  t.equal((await jsm.streams.info('R')).state.messages, 0, 'the work queue removed it');
});
