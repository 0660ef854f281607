import t from 'tap';
import { decodeThrottles, encodeThrottles } from '../../../src/status/throttles.js';

const invocation = { callId: 'c1', enqueuedAtMs: 1_700_000_000_000 };

t.test('the ledger entry round-trips the count of its own invocation', async (t) => {
  t.equal(decodeThrottles(invocation, encodeThrottles(invocation, 7)), 7);
});

t.test("another invocation's entry under the same call id (a replayed dead letter, a reused X-Call-Id) counts 0", async (t) => {
  t.equal(decodeThrottles({ ...invocation, enqueuedAtMs: invocation.enqueuedAtMs + 1 }, encodeThrottles(invocation, 7)), 0);
});

t.test('an unreadable entry counts 0', async (t) => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  t.equal(decodeThrottles(invocation, bytes('not json')), 0);
  t.equal(decodeThrottles(invocation, bytes(`{"throttled":-2,"enqueuedAtMs":${invocation.enqueuedAtMs}}`)), 0);
  t.equal(decodeThrottles(invocation, bytes(`{"throttled":1.5,"enqueuedAtMs":${invocation.enqueuedAtMs}}`)), 0);
  t.equal(decodeThrottles(invocation, bytes('null')), 0);
});
