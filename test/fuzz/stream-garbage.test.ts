import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { jetstream, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, MsgHdrsImpl, type MsgHdrs } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import fc from 'fast-check';
import t from 'tap';
import { request } from 'undici';
import { DeadLetterHeader } from '../../src/queue/dead-letter.js';
import { CALLER_HEADER_PREFIX, encodeEnvelope, EnvelopeHeader, type Invocation } from '../../src/queue/envelope.js';
import { startStack } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { assertProperty, fuzzRun, httpFieldValue, httpToken, Tally } from '../helpers/fuzz.js';
import { DEAD_LETTER_STREAM } from '../../src/queue/topology.js';

/**
 * Messages no gateway wrote, published straight onto the work stream by a plain nats.js client:
 * every one must end in the dead letters as poison (none lost, none retried forever), while valid
 * invocations sent through the gateway in between still complete.
 */

const STREAM_SUBJECT = 'faas-request';
/** nats-server's default max_payload, checked against the server below. */
const MAX_PAYLOAD = 1024 * 1024;

/** A garbage message and the class of defect it was built with. */
interface Garbage {
  readonly kind: string;
  readonly headers: MsgHdrs | undefined;
  readonly data: Uint8Array;
}

const bytes = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 64 * 1024 }).map((n) => new Uint8Array(n).fill(0xff)) },
);

const envelope: fc.Arbitrary<Invocation> = fc.record({
  callId: fc.uuid(),
  functionName: fc.constantFrom('work', 'missing', 'a'),
  namespace: fc.constantFrom('openfaas-fn', 'other'),
  method: fc.constantFrom('POST', 'GET', 'PUT'),
  path: fc.constantFrom('', '/a', '/../..', '/%00'),
  query: fc.constantFrom('', 'a=1'),
  headers: fc.array(
    fc.tuple(
      httpToken(10).map((n) => n.toLowerCase()),
      httpFieldValue(20),
    ),
    { maxLength: 4 },
  ),
  body: fc.uint8Array({ maxLength: 64 }),
  callbackUrl: fc.constant(undefined),
  enqueuedAtMs: fc.constant(Date.now()),
  expiresAtMs: fc.constant(undefined),
  traceparent: fc.constant(undefined),
  tracestate: fc.constant(undefined),
});

/** Rewrites one envelope header (undefined: removes it), bypassing nats.js's checks like a foreign client. */
function mutate(inv: Invocation, name: string, value: string | undefined): MsgHdrs {
  const record = Object.create(null) as Record<string, string[]>;
  for (const [key, values] of encodeEnvelope(inv).headers) if (key !== name) record[key] = [...values];
  if (value !== undefined) record[name] = [value];
  return MsgHdrsImpl.fromRecord(record);
}

/** Values that make an envelope field invalid, by field. Each one alone makes the message poison. */
const REQUIRED = [EnvelopeHeader.callId, EnvelopeHeader.functionName, EnvelopeHeader.namespace, EnvelopeHeader.method, EnvelopeHeader.enqueuedAt];

const garbage: fc.Arbitrary<Garbage> = fc.oneof(
  // Raw bytes, no headers at all.
  bytes.map((data) => ({ kind: 'noHeaders', headers: undefined, data })),
  // Random valid header names and values, nothing of the envelope.
  fc.tuple(fc.array(fc.tuple(httpToken(), httpFieldValue(40)), { maxLength: 20 }), bytes).map(([pairs, data]) => {
    const h = natsHeaders();
    for (const [n, v] of pairs) h.append(n, v);
    return { kind: 'randomHeaders', headers: h, data };
  }),
  // A valid envelope with a wrong version.
  fc
    .tuple(
      envelope,
      fc.oneof(
        fc.constantFrom('', '0', '2', '1.0', '01', 'v1', '1 1', 'one'),
        httpFieldValue(8).filter((v) => v.trim() !== '1'),
      ),
      bytes,
    )
    .map(([inv, version, data]) => ({ kind: 'wrongVersion', headers: mutate(inv, EnvelopeHeader.version, version), data })),
  // A valid envelope missing a required header, or with it empty.
  fc
    .tuple(envelope, fc.constantFrom(...REQUIRED), fc.constantFrom(undefined, ''), bytes)
    .map(([inv, name, value, data]) => ({ kind: value === undefined ? 'missingField' : 'emptyField', headers: mutate(inv, name, value), data })),
  // Unparseable times and callback URLs.
  fc
    .tuple(
      envelope,
      fc.oneof(
        fc.tuple(fc.constant(EnvelopeHeader.enqueuedAt), fc.constantFrom('yesterday', '-1', '1.5', '1e400', 'NaN', '0x10', '9007199254740993')),
        fc.tuple(fc.constant(EnvelopeHeader.expiresAt), fc.constantFrom('soon', '1.5', 'Infinity', '')),
        fc.tuple(fc.constant(EnvelopeHeader.callbackUrl), fc.constantFrom('not a url', '://', 'http://[::1', '/relative', 'http://')),
      ),
      bytes,
    )
    .map(([inv, [name, value], data]) => ({ kind: 'badFieldValue', headers: mutate(inv, name, value), data })),
  // A caller header whose value claims to be escaped but is not valid percent-encoding.
  fc.tuple(envelope, fc.constantFrom('=?pct?%', '=?pct?%zz', '=?pct?%E2%82', '=?pct?%C0%AF'), bytes).map(([inv, value, data]) => {
    const record = (encodeEnvelope(inv).headers as MsgHdrsImpl).toRecord();
    record[`${CALLER_HEADER_PREFIX}x-bad`] = [value];
    return { kind: 'badEscape', headers: MsgHdrsImpl.fromRecord(record), data };
  }),
  // Header names no nats.js client would write (space, colon-free junk, UTF-8, control characters).
  fc
    .tuple(envelope, fc.constantFrom('Bad Key', 'é', 'X\u0001', 'Asyncfn-Call-Id ', '\u00ff\u00fe', 'Ключ'), fc.boolean(), bytes)
    .map(([inv, name, withEnvelope, data]) => {
      const record = Object.create(null) as Record<string, string[]>;
      if (withEnvelope) {
        for (const [key, values] of encodeEnvelope(inv).headers) if (key !== EnvelopeHeader.version) record[key] = [...values];
      }
      record[name] = ['x'];
      return { kind: 'invalidHeaderName', headers: MsgHdrsImpl.fromRecord(record), data };
    }),
  // CR/LF inside the version's value: the wire format splits it into extra header lines.
  fc
    .tuple(envelope, fc.constantFrom('v\r\nX-Injected: 1', '\r\n\r\n', 'v\nX-Bare-Lf: 1', 'v\r\n: no-name', '\r\nAsyncfn-Version: 2'), bytes)
    .map(([inv, value, data]) => ({ kind: 'crlfInjection', headers: mutate(inv, EnvelopeHeader.version, value), data })),
  // A status line on a stored message, as the server's own status messages have.
  fc.tuple(fc.constantFrom(503, 408, 409, 100, 404), bytes).map(([code, data]) => ({ kind: 'statusLine', headers: natsHeaders(code, 'Fuzz Status'), data })),
  // Huge headers, still no version: one value of up to 80 KiB (JetStream refuses headers over
  // 64 KiB; just under that, the dead letter's own headers tip it over), or thousands of fields.
  fc
    .tuple(
      envelope,
      fc.oneof(
        fc.integer({ min: 1024, max: 60 * 1024 }).map((n) => ({ big: n, many: 0 })),
        fc.integer({ min: 63 * 1024, max: 65 * 1024 }).map((n) => ({ big: n, many: 0 })),
        fc.integer({ min: 65 * 1024, max: 80 * 1024 }).map((n) => ({ big: n, many: 0 })),
        fc.integer({ min: 500, max: 3000 }).map((n) => ({ big: 0, many: n })),
      ),
      bytes,
    )
    .map(([inv, size, data]) => {
      const h = mutate(inv, EnvelopeHeader.version, undefined);
      if (size.big > 0) h.set('X-Huge', 'h'.repeat(size.big));
      for (let i = 0; i < size.many; i++) h.append(`X-Many-${i}`, String(i));
      return { kind: 'hugeHeaders', headers: h, data };
    }),
  // As large as a NATS message can be (headers plus body up to max_payload): the dead letter, with
  // its own headers added, no longer fits.
  fc.tuple(envelope, fc.integer({ min: 2048, max: 8192 }), fc.integer({ min: 0, max: 64 })).map(([inv, pad, slack]) => {
    const h = mutate(inv, EnvelopeHeader.version, undefined);
    h.set('X-Pad', 'p'.repeat(pad));
    const size = MAX_PAYLOAD - (h as MsgHdrsImpl).encode().length - slack;
    return { kind: 'nearMaxPayload', headers: h, data: new Uint8Array(size).fill(slack) };
  }),
);

/** Counterexamples print the class, the header names and the sizes, not 256 KiB of bytes. */
function described(g: Garbage): Garbage {
  const names = g.headers ? [...g.headers].map(([k, v]) => `${JSON.stringify(k.slice(0, 40))}×${v.length}`) : [];
  const size = g.headers ? (g.headers as MsgHdrsImpl).toString().length : 0;
  return Object.assign(g, {
    [fc.toStringMethod]: () => `${g.kind}{headers=[${names.slice(0, 12).join(',')}${names.length > 12 ? ',…' : ''}] ${size}B, data ${g.data.length}B}`,
  });
}

/** One run: garbage messages with valid invocations interleaved (at least one valid). */
const batch = fc.array(fc.oneof({ weight: 3, arbitrary: garbage.map(described) }, { weight: 1, arbitrary: fc.constant('valid' as const) }), {
  minLength: 1,
  maxLength: 8,
});

/**
 * Longest wait for one run's callbacks and dead letters. A run takes well under a second alone; CI
 * runs this file beside the headless-Chromium console test on two cores, where a run with a 1 MiB
 * message once took more than 10 s. A stalled worker still fails the run.
 */
const STEP_BOUND_MS = 30_000;

/** A body's identity for matching dead letters to what was published: length and SHA-256. */
const bodyId = (data: Uint8Array): string => `${data.length}:${createHash('sha256').update(data).digest('hex')}`;
const short = (h: string): string => h.slice(0, 24);

/** Items of `a` not matched one-for-one in `b`. */
function multisetMinus(a: readonly string[], b: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const x of b) left.set(x, (left.get(x) ?? 0) + 1);
  const out: string[] = [];
  for (const x of a) {
    const n = left.get(x) ?? 0;
    if (n > 0) left.set(x, n - 1);
    else out.push(x);
  }
  return out;
}

t.test('garbage published on the work stream is dead-lettered as poison; the worker keeps serving', async (t) => {
  const run = fuzzRun(t, 'stream garbage', 60);
  const stack = await startStack(t, { config: { worker: { maxInflight: 8 } } });
  const nc = await connect({ servers: stack.nats.url, name: 'fuzz-publisher' });
  t.teardown(() => nc.close());
  t.equal(nc.info?.max_payload, MAX_PAYLOAD, 'the server has the default max_payload');
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);

  // Dead letters counted as JetStream stores them: an ordered consumer on the dead-letter stream
  // (a core subscription would also see publishes JetStream then refuses).
  const tally = new Tally();
  const deadLetterBodies: string[] = [];
  const notPoison: string[] = [];
  let deadLetterWaiter: (() => void) | undefined;
  const dlqConsumer = await js.consumers.get(DEAD_LETTER_STREAM);
  const dlqMessages = await dlqConsumer.consume({
    callback: (msg) => {
      // Never throw here: an exception in a message callback would stall the connection.
      try {
        const reason = msg.headers?.get(DeadLetterHeader.reason);
        if (reason !== 'poison') notPoison.push(`reason ${String(reason)}, body ${short(bodyId(msg.data))}`);
        if (msg.headers?.get(DeadLetterHeader.error).includes('original headers dropped')) tally.add('deadLetteredWithoutOriginalHeaders');
      } catch (e) {
        notPoison.push(`unreadable dead letter: ${String(e)}`);
      }
      deadLetterBodies.push(bodyId(msg.data));
      deadLetterWaiter?.();
    },
  });
  t.teardown(() => dlqMessages.close().then(() => undefined));
  const waitForDeadLetters = (n: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out: ${deadLetterBodies.length} of ${n} dead letters after ${STEP_BOUND_MS / 1000} s`)), STEP_BOUND_MS);
      const check = (): void => {
        if (deadLetterBodies.length < n) return;
        clearTimeout(timer);
        deadLetterWaiter = undefined;
        resolve();
      };
      deadLetterWaiter = check;
      check();
    });

  const expectedPoison: string[] = [];
  let published = 0;
  let completed = 0;
  const validBody = fc.uint8Array({ maxLength: 2048 });
  const validHeader = fc.oneof(httpFieldValue(40), fc.constantFrom('\u00a0v\u00a0', '=?pct?x', ''));

  await assertProperty(
    run,
    fc.asyncProperty(batch, fc.array(fc.tuple(validBody, validHeader), { minLength: 8, maxLength: 8 }), async (items, validInputs) => {
      const callIds: Array<{ callId: string; body: Uint8Array; header: string }> = [];
      for (const [i, item] of items.entries()) {
        published += 1;
        if (item === 'valid') {
          const [body, header] = validInputs[i]!;
          const res = await request(`${stack.gateway.url}/async-function/work`, {
            method: 'POST',
            body,
            headers: { 'x-callback-url': stack.sink.url, 'x-fuzz': header, 'content-type': 'application/octet-stream' },
          });
          await res.body.dump();
          assert.equal(res.statusCode, 202, 'a valid invocation is accepted');
          callIds.push({ callId: String(res.headers['x-call-id']), body, header });
          tally.add('valid');
          continue;
        }
        try {
          const ack = await js.publish(STREAM_SUBJECT, item.data, item.headers ? { headers: item.headers } : undefined);
          assert.equal(ack.stream, 'faas-request');
          assert.equal(ack.duplicate, false, 'stored, not dropped as a duplicate');
        } catch (err) {
          // JetStream's own limit: such a message is never stored, so there is nothing to dead-letter.
          const headerBytes = item.headers ? (item.headers as MsgHdrsImpl).encode().length : 0;
          if (err instanceof JetStreamApiError && /header size exceeds/.test(err.message) && headerBytes > 64 * 1024) {
            published -= 1;
            tally.add('refusedByJetStream');
            continue;
          }
          const what = (item as unknown as Record<symbol, () => string>)[fc.toStringMethod]?.();
          throw new Error(`publishing ${String(what)} failed: ${String(err)}`, { cause: err });
        }
        expectedPoison.push(bodyId(item.data));
        tally.add(item.kind);
      }
      // Interleaved valid invocations complete: the function ran with the caller's body and header.
      for (const { callId, body, header } of callIds) {
        const callback = await stack.sink.waitForCallId(callId, STEP_BOUND_MS);
        assert.equal(callback.headers['x-function-status'], '200');
        assert.deepEqual(callback.body, Buffer.from(body), 'the callback carries the function echo of the body');
        const call = stack.fn.requests.find((r) => r.headers['x-call-id'] === callId);
        assert.equal(call?.headers['x-fuzz'], header, 'the caller header reached the function unchanged');
        completed += 1;
      }
      await waitForDeadLetters(expectedPoison.length);
    }),
    // Found by the envelope fuzz: NATS trimmed a caller's header value ending in U+00A0.
    [[['valid'], Array.from({ length: 8 }, (): [Uint8Array<ArrayBuffer>, string] => [new Uint8Array([0, 0xff]), '\u00a0v\u00a0'])]],
    { shrink: false },
  );

  // Every message published is accounted for: dead-lettered as poison, or completed.
  t.same(notPoison, [], 'every dead letter is readable and poison');
  t.same(multisetMinus(deadLetterBodies, expectedPoison).map(short), [], 'no dead letter twice, none unexpected');
  t.same(multisetMinus(expectedPoison, deadLetterBodies).map(short), [], 'no garbage message missing from the dead letters');
  t.equal(deadLetterBodies.length, expectedPoison.length, 'no extra dead letters');
  t.same([...deadLetterBodies].sort(), [...expectedPoison].sort(), 'each garbage message is dead-lettered once, body intact');
  t.equal(published, expectedPoison.length + completed, `published ${published} = dead-lettered ${expectedPoison.length} + completed ${completed}`);
  const stored = await jsm.streams.info(DEAD_LETTER_STREAM);
  t.equal(stored.state.messages, expectedPoison.length, 'the dead-letter stream holds them all');
  // Nothing is left pending or unacknowledged on the work queue (acks follow the dead-letter publish).
  await eventually(
    async () => {
      const info = await jsm.consumers.info('faas-request', 'faas-workers');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    'the work consumer to have nothing pending or unacknowledged',
    15_000,
  );
  t.pass('work consumer drained');
  tally.print(t, 'stream messages by class');
  const lost = published - expectedPoison.length - completed;
  t.comment(`published=${published} deadLettered=${expectedPoison.length} completed=${completed} lost=${lost}`);
});
