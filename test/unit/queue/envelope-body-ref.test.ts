import t from 'tap';
import { decodeEnvelope, encodeEnvelope, EnvelopeHeader, PoisonMessageError, type Invocation } from '../../../src/queue/envelope.js';

const base: Invocation = {
  callId: 'call-1',
  functionName: 'echo',
  namespace: 'openfaas-fn',
  method: 'POST',
  path: '',
  query: '',
  headers: [],
  body: new Uint8Array(0),
  enqueuedAtMs: 1_700_000_000_000,
};
const ref = { name: '6f1c2d9e-0b7a-4c1e-9a55-1f0e2d3c4b5a', size: 209_715_200, sha256: 'a'.repeat(64) };

t.test('a body reference survives the round trip; a message without one decodes without one', async (t) => {
  const withRef = encodeEnvelope({ ...base, bodyRef: ref });
  t.equal(withRef.headers.get(EnvelopeHeader.bodyRef), ref.name);
  t.same(decodeEnvelope(withRef.headers, withRef.data).bodyRef, ref);
  const plain = encodeEnvelope(base);
  t.notOk(plain.headers.has(EnvelopeHeader.bodyRef));
  t.notOk('bodyRef' in decodeEnvelope(plain.headers, plain.data));
});

t.test('a malformed or partial body reference makes the message poison, naming each problem', async (t) => {
  const bad = encodeEnvelope({ ...base, bodyRef: ref });
  bad.headers.set(EnvelopeHeader.bodySize, '-1');
  bad.headers.set(EnvelopeHeader.bodySha256, 'not-hex');
  const err = t.throws(() => decodeEnvelope(bad.headers, bad.data)) as PoisonMessageError;
  t.ok(err instanceof PoisonMessageError);
  t.same(err.reasons, [`invalid ${EnvelopeHeader.bodySize}`, `invalid ${EnvelopeHeader.bodySha256}`]);
  const partial = encodeEnvelope(base);
  partial.headers.set(EnvelopeHeader.bodyRef, ref.name);
  t.throws(() => decodeEnvelope(partial.headers, partial.data), PoisonMessageError);
});
