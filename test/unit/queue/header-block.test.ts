import { headers as natsHeaders, MsgHdrsImpl } from '@nats-io/nats-core';
import t from 'tap';
import { encodeEnvelope, encodeEnvelopeBlock, EnvelopeHeader } from '../../../src/queue/envelope.js';
import { HeaderBlock, readHeaderBlock, type HeaderSink } from '../../../src/queue/header-block.js';
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

t.test('a name or value nats.js refuses is not encoded, however often valid names came before', async (t) => {
  // The block keeps the names it found valid (bounded): what it kept must never let another through.
  for (const round of [1, 2]) {
    for (const [name, value] of [
      ['Good', 'v'],
      ['Bad Name', 'v'],
      ['Bad:Name', 'v'],
      ['Naïve', 'v'],
      ['Good', 'line\r\nInjected: yes'],
      ['Good', 'line\n'],
      ['Good', 'line\rInjected'],
    ] as const) {
      const block = new HeaderBlock();
      block.set('Asyncfn-Version', '1');
      block.append(name, value);
      const encoded = block.encode();
      if (name === 'Good' && value === 'v')
        t.equal(Buffer.from(encoded!).toString(), 'NATS/1.0\r\nAsyncfn-Version: 1\r\nGood: v\r\n\r\n', `round ${round}: a valid line`);
      else t.equal(encoded, undefined, `round ${round}: ${JSON.stringify(name)}: ${JSON.stringify(value)}`);
    }
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

/** nats.js's reading of a block as name → values, or "refused" when its parser throws. */
function natsReading(block: string): Array<[string, string[]]> | 'refused' {
  try {
    return [...MsgHdrsImpl.decode(new TextEncoder().encode(block))];
  } catch {
    return 'refused';
  }
}

t.test('a delivered block is read as nats.js reads it, without its header object', async (t) => {
  const cases: Array<[what: string, block: string, expected: Array<[string, string[]]> | 'refused']> = [
    [
      'repeated names keep their values in order, at the first place',
      'NATS/1.0\r\nA: 1\r\nb:2 \r\nA:  3\r\n\r\n',
      [
        ['A', ['1', '3']],
        ['b', ['2']],
      ],
    ],
    [
      'names are exact: a different case is another name',
      'NATS/1.0\r\nX-A: 1\r\nx-a: 2\r\n\r\n',
      [
        ['X-A', ['1']],
        ['x-a', ['2']],
      ],
    ],
    ['a value is trimmed, U+00A0 included', 'NATS/1.0\r\nx: \u00a0v w\u00a0\r\n\r\n', [['x', ['v w']]]],
    [
      'spaces and tabs around a value are trimmed',
      'NATS/1.0\r\nx: \t v \t w \t\r\ny:\t\r\n\r\n',
      [
        ['x', ['v \t w']],
        ['y', ['']],
      ],
    ],
    ['the value is everything after the first colon', 'NATS/1.0\r\nurl: http://h:1/p\r\n\r\n', [['url', ['http://h:1/p']]]],
    ['a line without a colon is skipped', 'NATS/1.0\r\nnocolon\r\nk: v\r\n\r\n', [['k', ['v']]]],
    ['an empty name is a name', 'NATS/1.0\r\n: x\r\n\r\n', [['', ['x']]]],
    ['the status line is not a header', 'NATS/1.0 503 No Responders\r\n\r\n', []],
    ['a block of one line has no headers', 'NATS/1.0', []],
    ['a name with a space is refused', 'NATS/1.0\r\na b: 1\r\n\r\n', 'refused'],
    ['a name outside ASCII is refused', 'NATS/1.0\r\nä: 1\r\n\r\n', 'refused'],
    ['a lone CR inside a value is refused', 'NATS/1.0\r\nk: 1\r2\r\n\r\n', 'refused'],
  ];
  for (const [what, block, expected] of cases) {
    t.same(natsReading(block), expected, `nats.js: ${what}`);
    const ours = readHeaderBlock(new TextEncoder().encode(block));
    t.same(ours === undefined ? 'refused' : [...ours], expected, what);
  }
});
