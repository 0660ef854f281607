import { headers as natsHeaders, MsgHdrsImpl } from '@nats-io/nats-core';
import { pino } from 'pino';
import t from 'tap';
import { encodeEnvelopeBlock } from '../../src/queue/envelope.js';
import { preEncoded } from '../../src/queue/encoded-headers.js';
import { deliveredHeaderBlock, toDelivery } from '../../src/queue/pull.js';
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
