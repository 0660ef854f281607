import { headers as natsHeaders, type MsgHdrsImpl } from '@nats-io/nats-core';
import t from 'tap';
import { encodeEnvelope, encodeEnvelopeBlock, EnvelopeHeader } from '../../../src/queue/envelope.js';
import { HeaderBlock, type HeaderSink } from '../../../src/queue/header-block.js';
import { testInvocation } from '../../helpers/invocations.js';

/** The same calls made on a HeaderBlock and on nats.js's MsgHdrs: both blocks, as text. */
function both(write: (h: HeaderSink) => void): { ours: string | undefined; nats: string } {
  const block = new HeaderBlock();
  write(block);
  const encoded = block.encode();
  const h = natsHeaders();
  write(h);
  return { ours: encoded && Buffer.from(encoded).toString(), nats: Buffer.from((h as MsgHdrsImpl).encode()).toString() };
}

t.test('the same bytes as nats.js: names in first-written order, one name’s values together, values trimmed', async (t) => {
  const { ours, nats } = both((h) => {
    h.set('Asyncfn-Version', '1');
    h.set('Asyncfn-Path', '  /orders  ');
    h.append('Asyncfn-H-accept', 'text/plain');
    h.append('Asyncfn-H-x-multi', 'a');
    h.append('Asyncfn-H-accept', 'application/json');
    h.append('Asyncfn-H-x-multi', 'b');
    h.set('Asyncfn-Due-Subject', 'faas-request.bench');
  });
  t.equal(ours, nats);
  t.equal(
    ours,
    'NATS/1.0\r\nAsyncfn-Version: 1\r\nAsyncfn-Path: /orders\r\nAsyncfn-H-accept: text/plain\r\nAsyncfn-H-accept: application/json\r\nAsyncfn-H-x-multi: a\r\nAsyncfn-H-x-multi: b\r\nAsyncfn-Due-Subject: faas-request.bench\r\n\r\n',
  );
});

t.test('a name or value nats.js refuses is not encoded', async (t) => {
  for (const [name, value] of [
    ['Bad Name', 'v'],
    ['Bad:Name', 'v'],
    ['Naïve', 'v'],
    ['Good', 'line\r\nInjected: yes'],
    ['Good', 'line\n'],
  ] as const) {
    const block = new HeaderBlock();
    block.set('Asyncfn-Version', '1');
    block.append(name, value);
    t.equal(block.encode(), undefined, `${JSON.stringify(name)}: ${JSON.stringify(value)}`);
  }
});

t.test('encodeEnvelopeBlock: the envelope nats.js would encode, the extra header last; a refused value throws as nats.js does', async (t) => {
  const invocation = testInvocation({
    headers: [
      ['x-a', '1'],
      ['x-b', ' 2'],
      ['x-a', '3'],
    ],
    callbackUrl: 'http://127.0.0.1:9/cb',
    traceparent: undefined,
  });
  const { headers } = encodeEnvelope(invocation);
  t.same(Buffer.from(encodeEnvelopeBlock(invocation)), Buffer.from((headers as MsgHdrsImpl).encode()));
  headers.set(EnvelopeHeader.dueSubject, 'faas-request.fn');
  t.same(Buffer.from(encodeEnvelopeBlock(invocation, [EnvelopeHeader.dueSubject, 'faas-request.fn'])), Buffer.from((headers as MsgHdrsImpl).encode()));
  t.throws(() => encodeEnvelopeBlock({ ...invocation, method: 'PO\nST' }), /cannot contain \\r or \\n/);
});
