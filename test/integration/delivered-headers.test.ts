import { headers as natsHeaders, MsgHdrsImpl } from '@nats-io/nats-core';
import { pino } from 'pino';
import type { JsMsg } from '@nats-io/jetstream';
import t from 'tap';
import { encodeEnvelopeBlock } from '../../src/queue/envelope.js';
import { preEncoded } from '../../src/queue/encoded-headers.js';
import { deliveredHeaderBlock, toDelivery } from '../../src/queue/pull.js';
import { deliveryCountsOf } from '../../src/queue/delivery-counts.js';
import { testInvocation } from '../helpers/invocations.js';
import { startQueueStream } from '../helpers/queue-stream.js';

/*
 * The worker reads a delivered envelope's header block itself, from where nats.js keeps the
 * message's bytes (src/queue/pull.ts). These run against a real nats-server so that a nats.js
 * release that moves those bytes fails here instead of quietly taking the slower path.
 */

const silent = pino({ enabled: false });

t.test('a delivered message gives its header block as published, and the worker decodes the envelope from it', async (t) => {
  const { js, spec, consumer } = await startQueueStream(t, 10);

  const invocation = testInvocation({
    headers: [
      ['x-one', 'a'],
      ['x-one', 'b'],
      ['accept', 'text/plain'],
    ],
  });
  const block = encodeEnvelopeBlock(invocation);
  await js.publish(spec.subject, invocation.body, { headers: preEncoded(block) });
  const plain = natsHeaders();
  plain.set('X-Not-An-Envelope', 'yes');
  await js.publish(spec.subject, new TextEncoder().encode('{"path":"/"}'), { headers: plain });
  await js.publish(spec.subject, new TextEncoder().encode('no headers at all'));

  const received = [];
  for await (const msg of await consumer.fetch({ max_messages: 3, expires: 5_000 })) {
    received.push(msg);
    if (received.length === 3) break;
  }
  const [envelope, other, bare] = received;

  t.same(Buffer.from(deliveredHeaderBlock(envelope!) ?? []), Buffer.from(block), 'the envelope: the block as published');
  t.same(Buffer.from(deliveredHeaderBlock(other!) ?? []), Buffer.from((plain as MsgHdrsImpl).encode()), 'any message with headers: its block');
  t.equal(deliveredHeaderBlock(bare!), undefined, 'a message without headers: none');
  t.same(Buffer.from(envelope!.data), Buffer.from(invocation.body), 'the payload after the block is the body');

  const delivery = toDelivery(envelope!, silent, async () => undefined, { defaultNamespace: 'openfaas-fn', maxEventAgeMs: 0 });
  t.ok(delivery.decoded.ok, 'decoded');
  if (delivery.decoded.ok) t.same(delivery.decoded.invocation, { ...invocation, body: delivery.decoded.invocation.body }, 'the same invocation');
  for (const msg of received) msg.ack();
});

t.test("a delivery's count and what waits behind it are read from its reply subject as nats.js reads them", async (t) => {
  const { js, spec, consumer } = await startQueueStream(t, 10);
  for (let i = 0; i < 3; i++) await js.publish(spec.subject, encodeEnvelopeBlockPayload(i), { headers: preEncoded(encodeEnvelopeBlock(testInvocation())) });
  const defaults = { defaultNamespace: 'openfaas-fn', maxEventAgeMs: 0 };
  const fetchOne = async (): Promise<JsMsg> => {
    for await (const msg of await consumer.fetch({ max_messages: 1, expires: 5_000 })) return msg;
    throw new Error('no message delivered');
  };

  const received = [await fetchOne(), await fetchOne(), await fetchOne()];
  for (const [i, msg] of received.entries()) {
    const delivery = toDelivery(msg, silent, async () => undefined, defaults);
    t.equal(delivery.message.deliveryCount, 1, `message ${i + 1}: a first delivery`);
    t.equal(delivery.waiting, 2 - i, `message ${i + 1}: ${2 - i} waiting behind it`);
    t.equal(delivery.message.deliveryCount, msg.info.deliveryCount, `message ${i + 1}: the count nats.js reads`);
    t.equal(delivery.waiting, msg.info.pending, `message ${i + 1}: the pending count nats.js reads`);
    t.same(deliveryCountsOf(replyOf(msg)), { deliveryCount: 1, pending: 2 - i }, `message ${i + 1}: the server's subject is read, not left to nats.js`);
  }

  const [one, two, last] = received;
  one!.ack();
  two!.ack();
  last!.nak();
  const again = await fetchOne();
  const redelivery = toDelivery(again, silent, async () => undefined, defaults);
  t.equal(again.info.streamSequence, last!.info.streamSequence, 'the message given back, delivered again');
  t.equal(redelivery.message.deliveryCount, 2, 'its second delivery');
  t.equal(redelivery.message.deliveryCount, again.info.deliveryCount, 'the count nats.js reads');
  t.equal(redelivery.waiting, again.info.pending, 'the pending count nats.js reads');
  t.same(deliveryCountsOf(replyOf(again)), { deliveryCount: 2, pending: 0 }, "the server's subject is read, not left to nats.js");
  again.ack();
});

/** The reply subject nats.js keeps on a delivered message (not in its JsMsg type). */
function replyOf(msg: JsMsg): string {
  return (msg as unknown as { readonly reply: string }).reply;
}

/** A small distinct body per message. */
function encodeEnvelopeBlockPayload(i: number): Uint8Array {
  return new TextEncoder().encode(`body ${i}`);
}
