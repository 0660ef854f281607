import { headers as natsHeaders, type MsgHdrsImpl } from '@nats-io/nats-core';
import t from 'tap';
import { encodeOnce } from '../../../src/queue/encoded-headers.js';

t.test('encodeOnce: the block nats.js would send, its size, and the same bytes on every send', async (t) => {
  const h = natsHeaders() as MsgHdrsImpl;
  h.set('Asyncfn-Call-Id', 'abc');
  h.append('Asyncfn-H-x-tag', 'é');
  const expected = h.encode();
  const encoded = encodeOnce(h);
  const { bytes } = encoded;
  // What nats.js calls to send them.
  const headers = encoded.headers as unknown as { encode(): Uint8Array };
  t.same(headers.encode(), expected, 'what MsgHdrs.encode() gives');
  t.equal(bytes, expected.length, 'its size in bytes (UTF-8), as NATS counts it against max_payload');
  t.equal(headers.encode(), headers.encode(), 'encoded once: each send gets the same bytes');
  t.throws(() => (headers as unknown as { set(k: string, v: string): void }).set('Nats-Msg-Id', 'x'), TypeError, 'nothing can be added after encoding');
});
