import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Match, headers as natsHeaders, MsgHdrsImpl, type MsgHdrs } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import fc from 'fast-check';
import t from 'tap';
import { isDnsLabel } from '../../src/functions/index.js';
import { callbackUrlFrom, callIdFrom } from '../../src/gateway/invocation-target.js';
import { decodeDeadLetter } from '../../src/queue/dead-letter.js';
import {
  CALLER_HEADER_PREFIX,
  decodeEnvelope,
  encodeEnvelope,
  encodeEnvelopeBlock,
  EnvelopeHeader,
  ENVELOPE_VERSION,
  PoisonMessageError,
  type Invocation,
} from '../../src/queue/envelope.js';
import { readHeaderBlock } from '../../src/queue/header-block.js';
import { assertProperty, fuzzRun, httpFieldValue, httpToken, Tally, TOKEN_CHARS } from '../helpers/fuzz.js';
import { startNatsServer } from '../helpers/nats-server.js';

// ---- arbitraries: what the gateway can put in an envelope -------------------------------------

const CALL_ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_=-';

/** Call ids by the rules of src/gateway/invocation-target.ts: dot-separated tokens, 1-128 chars. */
const callId = fc.oneof(
  fc.uuid(),
  fc
    .array(fc.string({ unit: fc.constantFrom(...CALL_ID_CHARS), minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.join('.'))
    .filter((id) => id.length <= 128),
);

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);

/** A character node can hand over in a request target: printable ASCII and latin1 (raw bytes ≥ 0x80). */
const urlChar = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) }, { weight: 2, arbitrary: fc.integer({ min: 0x80, max: 0xff }) });
const segment = fc.oneof(
  fc.constantFrom('', '.', '..', '%00', '%2e%2e', '%2F', '%', '%zz', '~', 'é', '%E2%9C%93'),
  fc.array(urlChar, { maxLength: 30 }).map((codes) => String.fromCharCode(...codes).replace(/[?#]/g, '')),
);
/** "" or "/a/b" as received: percent-encoding untouched, dot segments and empty segments kept. */
const pathSuffix = fc.oneof(
  fc.constant(''),
  fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join('/')}`),
);
const query = fc.oneof(
  fc.constant(''),
  fc.array(urlChar, { maxLength: 60 }).map((codes) => String.fromCharCode(...codes).replace(/#/g, '')),
  fc.constantFrom('a=1&a=2', '=', '&&', '%00', 'q=%E2%9C%93', 'x'.repeat(2000)),
);

const callbackUrl = fc.webUrl({ withQueryParameters: true, withFragments: true, validSchemes: ['http', 'https'] }).map((url) => callbackUrlFrom(url)!);

/**
 * Values at the edges of what NATS carries: U+00A0 is obs-text to HTTP (node keeps it) but
 * whitespace to JavaScript's trim, which NATS applies; and values that look escaped.
 */
const edgeValue = fc.constantFrom(
  '\u00a0',
  'v\u00a0',
  '\u00a0v\u00a0',
  '\u00a0'.repeat(50),
  ' \u00a0 \u00a0',
  '\u00a0%\u00a0',
  '%\u00a0',
  '',
  '=?pct?',
  '=?pct?%zz',
  '=?pct?%41',
  '%41',
  'a:b',
  'NATS/1.0',
);

/** Caller headers as node hands them over (lower-cased names; repeated names repeat, in order). */
const callerHeaders = fc.array(
  fc
    .tuple(
      fc.oneof(httpToken(), fc.constantFrom('content-type', 'nats-msg-id', 'asyncfn-version', 'asyncfn-call-id', 'asyncfn-h-x', 'x-call-id', 'traceparent', 'x-multi')),
      fc.oneof({ weight: 5, arbitrary: httpFieldValue() }, { weight: 1, arbitrary: httpFieldValue(4000) }, { weight: 1, arbitrary: edgeValue }),
    )
    .map(([name, value]) => [name.toLowerCase(), value] as [string, string]),
  { maxLength: 12 },
);

const body = fc.oneof(
  fc.constant(new Uint8Array(0)),
  fc.uint8Array({ maxLength: 512 }),
  // Not UTF-8: lone continuation bytes, overlong forms, a truncated sequence.
  fc.constantFrom(new Uint8Array([0x80]), new Uint8Array([0xc0, 0xaf]), new Uint8Array([0xe2, 0x82]), new Uint8Array([0xff, 0xfe, 0])),
);

const invocation: fc.Arbitrary<Invocation> = fc.record(
  {
    callId,
    functionName: dnsLabel,
    namespace: dnsLabel,
    method: httpToken(12),
    path: pathSuffix,
    query,
    headers: callerHeaders,
    body,
    callbackUrl: fc.option(callbackUrl, { nil: undefined }),
    enqueuedAtMs: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    expiresAtMs: fc.option(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
    traceparent: fc.option(
      httpFieldValue(60).filter((v) => v !== ''),
      { nil: undefined },
    ),
    tracestate: fc.option(
      fc.oneof(httpFieldValue(120), edgeValue).filter((v) => v !== ''),
      { nil: undefined },
    ),
    // Decoded only when present (X-Delay-Seconds / X-Not-Before, X-Store-Result, X-Timeout, a chained call).
    parentCallId: callId,
    notBeforeMs: fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    storeResult: fc.constant(true),
    timeoutMs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  },
  {
    requiredKeys: [
      'callId',
      'functionName',
      'namespace',
      'method',
      'path',
      'query',
      'headers',
      'body',
      'callbackUrl',
      'enqueuedAtMs',
      'expiresAtMs',
      'traceparent',
      'tracestate',
    ],
  },
);

/** A minimal valid invocation for regression examples. */
const BASE: Invocation = {
  callId: 'A',
  functionName: 'a',
  namespace: 'a',
  method: 'POST',
  path: '',
  query: '',
  headers: [],
  body: new Uint8Array(),
  callbackUrl: undefined,
  enqueuedAtMs: 0,
  expiresAtMs: undefined,
  traceparent: undefined,
  tracestate: undefined,
};

/** Values per (lower-cased) name, names sorted: HTTP keeps the order of one name's values, not across names. */
function byName(headers: ReadonlyArray<readonly [string, string]>): Array<[string, string[]]> {
  const out = new Map<string, string[]>();
  for (const [name, value] of headers) {
    const key = name.toLowerCase();
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** What a consumer reads: the headers after NATS's wire format (encode, then parse). */
function overTheWire(headers: MsgHdrs): MsgHdrs {
  return MsgHdrsImpl.decode((headers as MsgHdrsImpl).encode());
}

function expectedDecode(inv: Invocation): unknown {
  return { ...inv, headers: byName(inv.headers) };
}

function actualDecode(decoded: Invocation): unknown {
  return { ...decoded, headers: byName(decoded.headers) };
}

t.test('the generators follow the gateway rules', async (t) => {
  const run = fuzzRun(t, 'generator sanity', 200);
  await assertProperty(
    run,
    fc.property(invocation, (inv) => {
      // Guards against a generator drifting from the rules it claims to model.
      return callIdFrom(inv.callId) === inv.callId && isDnsLabel(inv.functionName) && isDnsLabel(inv.namespace);
    }),
  );
});

t.test("the gateway's header block (written as text) is byte for byte what nats.js encodes for the same envelope", async (t) => {
  const run = fuzzRun(t, 'envelope header block', 1000);
  const dueSubject = fc.option(fc.constantFrom('faas-request.bench', 'faas-request.fn.ns', ' padded '), { nil: undefined });
  await assertProperty(
    run,
    fc.property(invocation, dueSubject, (inv, due) => {
      const { headers } = encodeEnvelope(inv);
      if (due !== undefined) headers.set(EnvelopeHeader.dueSubject, due);
      const block = encodeEnvelopeBlock(inv, due === undefined ? undefined : [EnvelopeHeader.dueSubject, due]);
      assert.deepEqual(Buffer.from(block), Buffer.from((headers as MsgHdrsImpl).encode()));
    }),
  );
});

/**
 * Header blocks: lines of `name:value` and lines without a colon, after one of the status lines
 * NATS sends. `bare` weighs the lines without a colon against the others.
 */
function headerBlocks(char: fc.Arbitrary<string>, bare: number) {
  const line = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.string({ unit: char, maxLength: 12 }), fc.string({ unit: char, maxLength: 30 })).map(([n, v]) => `${n}:${v}`) },
    { weight: bare, arbitrary: fc.string({ unit: char, maxLength: 20 }) },
  );
  return fc.tuple(fc.constantFrom('NATS/1.0', 'NATS/1.0 503', 'NATS/1.0 100 Idle Heartbeat'), fc.array(line, { maxLength: 12 }), fc.boolean());
}

const anyChar = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...'aZ09-_:. \t\r\n\u00a0é') },
  { weight: 4, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
);
/** Mostly what a gateway writes (printable ASCII, spaces, tabs), which is read without per-line checks; and DEL. */
const asciiChar = fc.oneof(
  { weight: 10, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.constantFrom(':', ' ', '\t') },
  { weight: 1, arbitrary: fc.constant('\x7f') },
);

for (const [what, char, bare] of [
  ['any text', anyChar, 4],
  ['mostly printable ASCII', asciiChar, 1],
] as const) {
  t.test(`a delivered header block is read as nats.js reads it (same names and values, refused when it refuses): ${what}`, async (t) => {
    const run = fuzzRun(t, `header block reading, ${what}`, 1000);
    const block = headerBlocks(char, bare);
    await assertProperty(
      run,
      fc.property(block, ([status, lines, terminated]) => {
        const bytes = new TextEncoder().encode([status, ...lines].join('\r\n') + (terminated ? '\r\n\r\n' : ''));
        let expected: Array<[string, string[]]> | 'refused';
        try {
          expected = [...MsgHdrsImpl.decode(bytes)];
        } catch {
          expected = 'refused';
        }
        const ours = readHeaderBlock(bytes);
        assert.deepEqual(ours === undefined ? 'refused' : [...ours], expected);
      }),
    );
  });
}

t.test('encode → NATS wire format → decode round-trips any invocation', async (t) => {
  const run = fuzzRun(t, 'envelope round trip', 1000);
  const tally = new Tally();
  await assertProperty(
    run,
    fc.property(invocation, (inv) => {
      tally.add('cases');
      if (inv.body.length === 0) tally.add('emptyBody');
      if (new TextDecoder('utf-8', { fatal: false }).decode(inv.body).includes('\ufffd')) tally.add('nonUtf8Body');
      if (new Set(inv.headers.map(([n]) => n)).size < inv.headers.length) tally.add('repeatedHeaders');
      if (inv.headers.some(([, v]) => /[^\x20-\x7e]/.test(v))) tally.add('obsTextValues');
      if (inv.path.includes('..') || inv.path.includes('//')) tally.add('dotOrEmptySegments');
      const { headers, data } = encodeEnvelope(inv);
      const decoded = decodeEnvelope(overTheWire(headers), data);
      assert.deepEqual(actualDecode(decoded), expectedDecode(inv));
      assert.deepEqual(Buffer.from(decoded.body), Buffer.from(inv.body));
      // The worker's reading of the same block (src/queue/pull.ts) decodes to the same invocation.
      const read = readHeaderBlock((headers as MsgHdrsImpl).encode());
      assert.ok(read, 'the worker reads the block');
      assert.deepEqual(decodeEnvelope(read, data), decoded);
    }),
    // Found by this property: NATS trimmed a value that starts or ends with U+00A0.
    [
      [{ ...BASE, tracestate: '\u00a0' }],
      [
        {
          ...BASE,
          headers: [
            ['x-a', 'v\u00a0'],
            ['x-a', '\u00a0'],
          ],
        },
      ],
    ],
  );
  t.pass(`${run.numRuns} invocations round-tripped`);
  tally.print(t, 'round trip cases');
});

t.test("callers' header names of any case decode lower-cased, each name's values in order", async (t) => {
  const run = fuzzRun(t, 'header case', 500);
  const mixed = fc.array(fc.tuple(fc.mixedCase(fc.constantFrom('x-a', 'x-b', 'content-type', 'accept')), httpFieldValue(20)), { maxLength: 10 });
  await assertProperty(
    run,
    fc.property(invocation, mixed, (inv, headers) => {
      const withCase = { ...inv, headers };
      const { headers: h, data } = encodeEnvelope(withCase);
      const decoded = decodeEnvelope(overTheWire(h), data);
      assert.ok(
        decoded.headers.every(([name]) => name === name.toLowerCase()),
        'names are lower-cased',
      );
      assert.deepEqual(byName(decoded.headers), byName(headers));
    }),
    // Found by this property: one name in two cases split into two NATS keys, reordering its values.
    [
      [
        BASE,
        [
          ['X-a', ''],
          ['x-a', ''],
          ['X-a', '!'],
        ],
      ],
    ],
  );
  t.pass(`${run.numRuns} header sets of mixed case decoded`);
});

// ---- decoding garbage -----------------------------------------------------------------------------

const envelopeNames = Object.values(EnvelopeHeader);

/** Any string, including CR/LF, NUL, lone surrogates and astral characters. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(...['', ' ', '1', ' 1 ', '01', '1.0', '2', '-1', '1e3', 'NaN', 'Infinity', '9007199254740993'], ...['\r\n', 'a\r\nAsyncfn-Version: 1', '\ud800']),
  fc.constantFrom('=?pct?', '=?pct?%', '=?pct?%zz', '=?pct?%E2%82', '=?pct?%C0%AF', '=?pct?%31', '=?pct?%0D%0A'),
  fc.integer().map(String),
);
/** Header names: the envelope's in any case, the caller prefix, tokens, and names NATS itself would refuse. */
const anyName = fc.oneof(
  fc.mixedCase(fc.constantFrom(...envelopeNames)),
  fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), maxLength: 10 }).map((s) => CALLER_HEADER_PREFIX + s),
  httpToken(),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const headerPairs = fc.array(fc.tuple(anyName, anyString), { maxLength: 16 });

/** Header sets built three ways: through the API (validating), raw records (not), and parsed wire bytes. */
const anyHeaders: fc.Arbitrary<{ kind: string; headers: MsgHdrs | undefined }> = fc.oneof(
  fc.constant({ kind: 'none', headers: undefined }),
  headerPairs.map((pairs) => {
    const h = natsHeaders();
    for (const [name, value] of pairs) {
      try {
        h.append(name, value);
      } catch {
        // The API refuses names and values NATS cannot carry; the other kinds cover those.
      }
    }
    return { kind: 'api', headers: h };
  }),
  headerPairs.map((pairs) => {
    // No prototype: "constructor" and "__proto__" are header names like any other.
    const record = Object.create(null) as Record<string, string[]>;
    for (const [name, value] of pairs) (record[name] ??= []).push(value);
    return { kind: 'record', headers: MsgHdrsImpl.fromRecord(record) };
  }),
  // Header blocks as they arrive from the server, any bytes; nats.js refuses some names when parsing.
  fc
    .tuple(
      fc.constantFrom('NATS/1.0', 'NATS/1.0 503', 'NATS/2.0', '', 'HTTP/1.1 200 OK'),
      fc.array(fc.tuple(anyName, anyString, fc.constantFrom(':', ': ', '', '::'))),
      fc.uint8Array({ maxLength: 40 }),
    )
    .map(([status, lines, tail]) => {
      const text = `${status}\r\n${lines.map(([n, v, sep]) => `${n}${sep}${v}`).join('\r\n')}\r\n`;
      const bytes = Buffer.concat([Buffer.from(text), tail]);
      try {
        return { kind: 'wireBytes', headers: MsgHdrsImpl.decode(bytes) };
      } catch {
        return { kind: 'wireBytesRefusedByNatsJs', headers: undefined };
      }
    }),
  // A valid envelope with one field replaced by garbage.
  fc.tuple(invocation, fc.constantFrom(...envelopeNames), anyString).map(([inv, name, value]) => {
    const h = MsgHdrsImpl.decode((encodeEnvelope(inv).headers as MsgHdrsImpl).encode());
    const record = h.toRecord();
    record[name] = [value];
    return { kind: 'mutatedEnvelope', headers: MsgHdrsImpl.fromRecord(record) };
  }),
);

/** A valid envelope's headers with one field set to `value`. */
function withField(name: string, value: string): MsgHdrs {
  const record = (encodeEnvelope(BASE).headers as MsgHdrsImpl).toRecord();
  record[name] = [value];
  return MsgHdrsImpl.fromRecord(record);
}

t.test('decoding any header set and bytes throws nothing but PoisonMessageError', async (t) => {
  const run = fuzzRun(t, 'envelope garbage', 2000);
  const tally = new Tally();
  await assertProperty(
    run,
    fc.property(anyHeaders, fc.uint8Array({ maxLength: 64 }), ({ kind, headers }, data) => {
      tally.add(kind);
      try {
        const decoded = decodeEnvelope(headers, data);
        tally.add('decoded');
        // Whatever decodes is an invocation the worker can use.
        assert.ok(decoded.callId !== '' && decoded.functionName !== '' && decoded.method !== '');
        assert.ok(Number.isSafeInteger(decoded.enqueuedAtMs));
        // Times are decimal integers as written: "" is not 0, "0x10" not 16.
        for (const name of [EnvelopeHeader.enqueuedAt, EnvelopeHeader.expiresAt]) {
          const text = headers?.values(name, Match.IgnoreCase)[0];
          if (text !== undefined) assert.match(text, /^-?\d+$/, `${name}: ${JSON.stringify(text)} decoded as a time`);
        }
      } catch (err) {
        if (!(err instanceof PoisonMessageError)) throw err;
        tally.add('poison');
        assert.ok(err.reasons.length > 0, 'a poison message names its problems');
      }
      // A dead letter carrying the same headers is readable too.
      const letter = decodeDeadLetter({ seq: 1, header: headers, data });
      assert.equal(letter.seq, 1);
    }),
    [
      // A version with surrounding spaces is not version 1 before the wire trims it.
      [{ kind: 'record', headers: MsgHdrsImpl.fromRecord({ [EnvelopeHeader.version]: [` ${ENVELOPE_VERSION} `] }) }, new Uint8Array()],
      // Found by the stream-garbage fuzz: an empty Asyncfn-Expires-At read as 0 (expired at once).
      [{ kind: 'record', headers: withField(EnvelopeHeader.expiresAt, '') }, new Uint8Array()],
      [{ kind: 'record', headers: withField(EnvelopeHeader.enqueuedAt, '0x10') }, new Uint8Array()],
    ],
  );
  t.pass(`${run.numRuns} header sets decoded or refused as poison`);
  tally.print(t, 'garbage decode cases');
});

// ---- through a real nats-server ----------------------------------------------------------------

t.test('an envelope stored in JetStream and read back decodes to the same invocation', async (t) => {
  const run = fuzzRun(t, 'envelope via JetStream', 150);
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const stream = `fuzz-${randomUUID()}`;
  await jsm.streams.add({ name: stream, subjects: [stream], storage: StorageType.Memory });
  const js = jsm.jetstream();
  await assertProperty(
    run,
    fc.asyncProperty(invocation, async (inv) => {
      const { headers, data } = encodeEnvelope(inv);
      const ack = await js.publish(stream, data, { headers });
      const stored = await jsm.streams.getMessage(stream, { seq: ack.seq });
      const decoded = decodeEnvelope(stored!.header, stored!.data);
      assert.deepEqual(actualDecode({ ...decoded, body: inv.body }), expectedDecode(inv));
      assert.deepEqual(Buffer.from(decoded.body), Buffer.from(inv.body));
    }),
  );
  t.pass(`${run.numRuns} invocations stored and read back`);
});
