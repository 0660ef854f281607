import t from 'tap';
import { decodeLedgerEntry, encodeLedgerEntry } from '../../../src/status/attempt-ledger.js';

const invocation = { callId: 'c1', enqueuedAtMs: 1_700_000_000_000 };
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

t.test('the ledger entry round-trips the attempts and throttles of its own invocation', async (t) => {
  t.same(decodeLedgerEntry(invocation, encodeLedgerEntry(invocation, { attempts: 3, throttled: 7 })), { attempts: 3, throttled: 7 });
  t.same(
    decodeLedgerEntry(invocation, encodeLedgerEntry(invocation, { attempts: 0, throttled: 0 })),
    { attempts: 0, throttled: 0 },
    'a first delivery given back: no attempt',
  );
});

t.test("another invocation's entry under the same call id (a replayed dead letter, a reused X-Call-Id) is no entry", async (t) => {
  t.equal(decodeLedgerEntry({ ...invocation, enqueuedAtMs: invocation.enqueuedAtMs + 1 }, encodeLedgerEntry(invocation, { attempts: 2, throttled: 1 })), undefined);
});

t.test("an older worker's entry (throttles and give-backs only) is read without attempts", async (t) => {
  t.same(decodeLedgerEntry(invocation, bytes(`{"throttled":2,"enqueuedAtMs":${invocation.enqueuedAtMs}}`)), { throttled: 2 });
});

t.test('an unreadable entry is no entry', async (t) => {
  t.equal(decodeLedgerEntry(invocation, bytes('not json')), undefined);
  t.equal(decodeLedgerEntry(invocation, bytes(`{"throttled":-2,"enqueuedAtMs":${invocation.enqueuedAtMs}}`)), undefined);
  t.equal(decodeLedgerEntry(invocation, bytes(`{"throttled":1.5,"enqueuedAtMs":${invocation.enqueuedAtMs}}`)), undefined);
  t.equal(decodeLedgerEntry(invocation, bytes(`{"attempts":"2","throttled":0,"enqueuedAtMs":${invocation.enqueuedAtMs}}`)), undefined);
  t.equal(decodeLedgerEntry(invocation, bytes('null')), undefined);
});
