import { headers as natsHeaders } from '@nats-io/nats-core';
import t from 'tap';
import {
  CALLER_HEADER_PREFIX,
  decodeEnvelope,
  encodeEnvelope,
  encodeEnvelopeBlock,
  EnvelopeHeader,
  ENVELOPE_VERSION,
  PoisonMessageError,
  type Invocation,
} from '../../../src/queue/envelope.js';
import { readHeaderBlock } from '../../../src/queue/header-block.js';
import { testInvocation } from '../../helpers/invocations.js';

const invocation: Invocation = {
  callId: 'call-1',
  functionName: 'echo',
  namespace: 'openfaas-fn',
  method: 'POST',
  path: '/a/b%20c',
  query: 'x=1&y=2',
  headers: [
    ['content-type', 'application/octet-stream'],
    ['x-multi', 'one'],
    ['x-multi', 'two'],
    ['nats-msg-id', 'caller-cannot-set-this'],
  ],
  body: new Uint8Array([0, 1, 2, 255]),
  callbackUrl: 'http://cb.test/hook?x=1',
  enqueuedAtMs: 1_700_000_000_000,
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'vendor=1',
};

t.test('an invocation survives encode → decode unchanged', async (t) => {
  const { headers, data } = encodeEnvelope(invocation);
  t.same(decodeEnvelope(headers, data), invocation);
  t.equal(data, invocation.body, 'the body is the payload itself: no wrapping, no copy');
});

t.test('a chained invocation carries its parent call id; messages without it still decode', async (t) => {
  const chained: Invocation = { ...invocation, callId: 'call-2', parentCallId: 'call-1' };
  const { headers, data } = encodeEnvelope(chained);
  t.equal(headers.get(EnvelopeHeader.parentCallId), 'call-1');
  t.equal(headers.get(EnvelopeHeader.version), ENVELOPE_VERSION, 'an optional header: the version stays');
  t.same(decodeEnvelope(headers, data), chained);
  const plain = encodeEnvelope(invocation);
  t.notOk(plain.headers.has(EnvelopeHeader.parentCallId), 'absent unless chained');
  const decoded = decodeEnvelope(plain.headers, plain.data);
  t.notOk('parentCallId' in decoded, 'an older message (no such header) decodes as before');
});

t.test("the caller's X-Timeout travels in ms; messages without it still decode; a bad one is poison", async (t) => {
  const limited: Invocation = { ...invocation, timeoutMs: 1_500 };
  const { headers, data } = encodeEnvelope(limited);
  t.equal(headers.get(EnvelopeHeader.timeout), '1500');
  t.same(decodeEnvelope(headers, data), limited);
  const plain = encodeEnvelope(invocation);
  t.notOk(plain.headers.has(EnvelopeHeader.timeout), 'absent unless asked');
  t.notOk('timeoutMs' in decodeEnvelope(plain.headers, plain.data), 'an older message (no such header) decodes as before');
  for (const bad of ['0', '-1', '1.5', 'soon', '']) {
    const h = encodeEnvelope(invocation).headers;
    h.set(EnvelopeHeader.timeout, bad);
    t.throws(() => decodeEnvelope(h, data), new PoisonMessageError([`invalid ${EnvelopeHeader.timeout}`]), JSON.stringify(bad));
  }
});

t.test('optional fields are omitted, not written empty', async (t) => {
  const minimal: Invocation = { ...invocation, path: '', query: '', headers: [], callbackUrl: undefined, traceparent: undefined, tracestate: undefined };
  const { headers, data } = encodeEnvelope(minimal);
  t.notOk(headers.has(EnvelopeHeader.callbackUrl));
  t.notOk(headers.has(EnvelopeHeader.path));
  t.same(decodeEnvelope(headers, data), minimal);
});

t.test("callers' headers are namespaced so they cannot collide with Nats-* or envelope headers", async (t) => {
  const { headers } = encodeEnvelope(invocation);
  t.notOk(headers.has('nats-msg-id'));
  t.notOk(headers.has('Nats-Msg-Id'));
  t.same(headers.values(`${CALLER_HEADER_PREFIX}nats-msg-id`), ['caller-cannot-set-this']);
  t.same(headers.values(`${CALLER_HEADER_PREFIX}x-multi`), ['one', 'two'], 'repeated headers keep every value');
  t.equal(headers.get(EnvelopeHeader.version), ENVELOPE_VERSION, 'the envelope is versioned');
});

t.test('a message that is not an envelope is poison, with every reason listed', async (t) => {
  t.throws(() => decodeEnvelope(undefined, new Uint8Array()), PoisonMessageError);
  const h = natsHeaders();
  h.set(EnvelopeHeader.version, '99');
  h.set(EnvelopeHeader.enqueuedAt, 'yesterday');
  h.set(EnvelopeHeader.callbackUrl, 'not a url');
  try {
    decodeEnvelope(h, new Uint8Array());
    t.fail('expected a PoisonMessageError');
  } catch (err) {
    t.type(err, PoisonMessageError);
    t.same((err as PoisonMessageError).reasons, [
      'unsupported envelope version "99"',
      'missing header Asyncfn-Call-Id',
      'missing header Asyncfn-Function',
      'missing header Asyncfn-Namespace',
      'missing header Asyncfn-Method',
      'invalid Asyncfn-Enqueued-At',
      'invalid Asyncfn-Callback-Url',
    ]);
  }
});

t.test('a call id that is no call id (a space, an empty dot-separated part, a wildcard) is poison: it could never be recorded', async (t) => {
  for (const callId of ['c2 space', 'c2.>', 'c3..x', '.lead', 'x'.repeat(129)]) {
    const { headers, data } = encodeEnvelope(testInvocation({ callId }));
    t.throws(
      () => decodeEnvelope(headers, data),
      { name: 'PoisonMessageError', reasons: [/^invalid Asyncfn-Call-Id: a call id is /] },
      JSON.stringify(callId.slice(0, 20)),
    );
  }
  for (const [what, over, reason] of [
    ['a method with a space', { method: 'BAD METHOD' }, /^invalid Asyncfn-Method: not an HTTP method/],
    ['a query with a space', { query: 'a=1 2' }, /^invalid Asyncfn-Query: /],
    ['a query with CR LF (escaped)', { query: 'a=1\r\nX: y' }, /^invalid Asyncfn-Query: /],
    ['a query with a fragment', { query: 'a=1#f' }, /^invalid Asyncfn-Query: /],
  ] as const) {
    const { headers, data } = encodeEnvelope(testInvocation(over));
    t.throws(() => decodeEnvelope(headers, data), { name: 'PoisonMessageError', reasons: [reason] }, what);
  }
  const { headers: latin1, data: latin1Data } = encodeEnvelope(testInvocation({ method: 'PATCH', query: 'q=caf\u00e9&x=%20' }));
  t.match(decodeEnvelope(latin1, latin1Data), { method: 'PATCH', query: 'q=caf\u00e9&x=%20' }, 'a method that is a token, a query a request can carry');
  const { headers: chained, data: chainedData } = encodeEnvelope(testInvocation({ callId: 'c1', parentCallId: 'p1\r\nX-Injected: 1' }));
  t.throws(
    () => decodeEnvelope(chained, chainedData),
    { name: 'PoisonMessageError', reasons: [/^invalid Asyncfn-Parent-Call-Id: a call id is /] },
    'a parent call id is a call id too',
  );
  for (const callId of ['3e71ddd1-2149-4bf8-bf31-3932e7588bcd', 'order-17.retry_2', 'a=b']) {
    const { headers, data } = encodeEnvelope(testInvocation({ callId }));
    t.equal(decodeEnvelope(headers, data).callId, callId, callId);
  }
});

t.test("a caller's header an HTTP request cannot carry is poison: it would fail every call (and wedge undici's pool)", async (t) => {
  const cases: Array<[string, Array<[string, string]>, RegExp]> = [
    ['CR LF in a value (escaped)', [['x-a', 'one\r\nHost: evil']], /^invalid value of Asyncfn-H-x-a/],
    ['a NUL in a value', [['x-a', 'a\u0000b']], /^invalid value of Asyncfn-H-x-a/],
    ['a character above U+00FF', [['x-a', 'caf\u00e9 \u20ac']], /^invalid value of Asyncfn-H-x-a/],
  ];
  for (const [what, headers, reason] of cases) {
    const { headers: h, data } = encodeEnvelope(testInvocation({ headers }));
    t.throws(() => decodeEnvelope(h, data), { name: 'PoisonMessageError', reasons: [reason] }, what);
  }
  // nats.js will not write this name; a foreign client (or readHeaderBlock's reading of one) can.
  const entries: Array<[string, string[]]> = [...encodeEnvelope(testInvocation()).headers, [`${CALLER_HEADER_PREFIX}bad name`, ['x']]];
  t.throws(() => decodeEnvelope(entries, new Uint8Array()), { name: 'PoisonMessageError', reasons: [/^invalid caller header name in /] }, 'a name with a space');
  const fine: Array<[string, string]> = [
    ['x-latin1', 'caf\u00e9'],
    ['x-spaces', '\u00a0padded\u00a0'],
    ['x-tab', 'a\tb'],
  ];
  const { headers: h, data } = encodeEnvelope(testInvocation({ headers: fine }));
  t.same(decodeEnvelope(h, data).headers, fine, 'obs-text, escaped white space and tabs are what a request can carry');
});

t.test('callback URLs: a valid one is taken each time it comes, an invalid one refused each time, whatever came before', async (t) => {
  // The decoder keeps the URLs it found parseable (bounded): what it kept must never let an invalid one through.
  const decodeWith = (callbackUrl: string) => {
    const { headers, data } = encodeEnvelope(invocation);
    headers.set(EnvelopeHeader.callbackUrl, callbackUrl);
    return decodeEnvelope(headers, data);
  };
  const long = `http://cb.test/${'a'.repeat(600)}`;
  for (const round of [1, 2]) {
    t.equal(decodeWith('http://cb.test/hook').callbackUrl, 'http://cb.test/hook', `round ${round}: a valid URL`);
    t.equal(decodeWith(long).callbackUrl, long, `round ${round}: a valid URL longer than those kept`);
    t.throws(() => decodeWith('http://cb.test:99999/hook'), PoisonMessageError, `round ${round}: an invalid port`);
    t.throws(() => decodeWith('/hook'), PoisonMessageError, `round ${round}: no scheme and host`);
    t.throws(() => decodeWith('file:///etc/passwd'), PoisonMessageError, `round ${round}: a scheme a gateway refuses`);
    t.equal(decodeWith('HTTPS://cb.test/hook').callbackUrl, 'HTTPS://cb.test/hook', `round ${round}: https, in any case`);
  }
});

t.test("a caller's header is forwarded under its own name each time it comes, whatever the case of the prefix", async (t) => {
  // The decoder keeps the names it has worked out (bounded): what it kept must stand for the same name only.
  const decodeWith = (entries: Array<[string, string]>) => {
    const { headers, data } = encodeEnvelope({ ...invocation, headers: [] });
    for (const [name, value] of entries) headers.append(name, value);
    return decodeEnvelope(headers, data).headers;
  };
  for (const round of [1, 2]) {
    t.same(
      decodeWith([
        [`${CALLER_HEADER_PREFIX}X-Thing`, 'a'],
        [`${CALLER_HEADER_PREFIX.toUpperCase()}X-Other`, 'b'],
        ['X-Not-A-Caller-Header', 'c'],
      ]),
      [
        ['x-thing', 'a'],
        ['x-other', 'b'],
      ],
      `round ${round}`,
    );
  }
});

t.test("a caller's header travels under its prefixed lower-case name each time, whatever the case it came in", async (t) => {
  // The encoder keeps the names it has worked out (bounded): what it kept must stand for the same name only.
  const sent: Invocation = {
    ...invocation,
    headers: [
      ['X-Thing', 'a'],
      ['x-thing', 'b'],
      ['X-Other', 'c'],
    ],
  };
  const expected = [
    [`${CALLER_HEADER_PREFIX}x-thing`, ['a', 'b']],
    [`${CALLER_HEADER_PREFIX}x-other`, ['c']],
  ];
  const callers = (entries: Iterable<[string, string[]]>) => [...entries].filter(([name]) => name.startsWith(CALLER_HEADER_PREFIX));
  for (const round of [1, 2]) {
    t.same(callers(readHeaderBlock(encodeEnvelopeBlock(sent))!), expected, `round ${round}: the block the gateway publishes`);
    t.same(callers(encodeEnvelope(sent).headers), expected, `round ${round}: through nats.js's headers`);
  }
});
