import { randomBytes } from 'node:crypto';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import t from 'tap';
import { replayHeaders } from '../../../src/dead-letters/replay.js';
import { decodeDeadLetter, encodeDeadLetter } from '../../../src/queue/dead-letter.js';
import { decodeMessage } from '../../../src/queue/decode.js';
import { encodeEnvelope, EnvelopeHeader, PoisonMessageError, type Invocation } from '../../../src/queue/envelope.js';
import { decodeQueueRequest, derivedCallId, escapePath, storedQueueRequest, type QueueRequestContext } from '../../../src/queue/openfaas-request.js';
import { goMarshal } from '../../helpers/go-queue-request.js';
import { testInvocation } from '../../helpers/invocations.js';

const ctx: QueueRequestContext = {
  defaultNamespace: 'openfaas-fn',
  storedAtMs: 1_700_000_000_000,
  messageKey: 'faas-request/42/1700000000000000001',
  maxEventAgeMs: 0,
};

const text = (data: Uint8Array): string => new TextDecoder().decode(data);

function poisonReasons(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof PoisonMessageError) return [...err.reasons];
    throw err;
  }
  throw new Error('expected a PoisonMessageError');
}

t.test('a QueueRequest as the OpenFaaS gateway writes it becomes the invocation asyncfn runs', async (t) => {
  const body = new Uint8Array([0, 1, 2, 0x7b, 0xff, 0xfe, 0x80]);
  const data = goMarshal({
    Header: {
      'Accept-Encoding': ['gzip'],
      'Content-Type': ['application/octet-stream'],
      'X-Call-Id': ['3f1c7a52-8e0e-4f67-9d36-5c3b8f0f2b11'],
      'X-Callback-Url': ['http://user:secret@127.0.0.1:9999/hook?a=1&b=<2>'],
      'X-Multi': ['one', 'two'],
      'X-Start-Time': ['1700000000000000000'],
      Connection: ['keep-alive'],
    },
    Host: 'gateway:8080',
    Body: body,
    Method: 'PUT',
    Path: '/a b/ü',
    QueryString: 'x=1&y=%20z',
    Function: 'echo.fn-ns',
    QueueName: 'faas-request',
    Annotations: { 'com.openfaas.queue': 'faas-request', 'com.openfaas.retry.attempts': '3' },
    Labels: { app: 'echo' },
    Environment: { mode: 'test' },
    CallbackUrl: { Scheme: 'http', User: true, Host: '127.0.0.1:9999', Path: '/hook', RawQuery: 'a=1&b=<2>' },
  });
  const json = text(data);
  t.ok(json.includes('\\u0026') && json.includes('\\u003c2\\u003e'), 'the message has Go-escaped & < >');
  t.ok(json.includes('"Body":"AAECe//+gA=="'), 'body as padded standard base64');

  const invocation = decodeQueueRequest(undefined, data, ctx);
  t.same(invocation, {
    callId: '3f1c7a52-8e0e-4f67-9d36-5c3b8f0f2b11',
    functionName: 'echo',
    namespace: 'fn-ns',
    method: 'PUT',
    path: '/a%20b/%C3%BC',
    query: 'x=1&y=%20z',
    headers: [
      ['accept-encoding', 'gzip'],
      ['content-type', 'application/octet-stream'],
      ['x-call-id', '3f1c7a52-8e0e-4f67-9d36-5c3b8f0f2b11'],
      ['x-callback-url', 'http://user:secret@127.0.0.1:9999/hook?a=1&b=<2>'],
      ['x-multi', 'one'],
      ['x-multi', 'two'],
      ['x-start-time', '1700000000000000000'],
    ],
    body,
    // From the header: it keeps the credentials the CallbackUrl struct lost.
    callbackUrl: 'http://user:secret@127.0.0.1:9999/hook?a=1&b=%3C2%3E',
    enqueuedAtMs: ctx.storedAtMs,
    expiresAtMs: undefined,
    traceparent: undefined,
    tracestate: undefined,
    original: { headers: undefined, data },
  });
  t.same([...invocation.body], [...body], 'binary body byte for byte');
});

t.test('the callback comes from the CallbackUrl struct when the header is missing; none when neither is there', async (t) => {
  const withStruct = decodeQueueRequest(
    undefined,
    goMarshal({
      Method: 'POST',
      Function: 'echo',
      CallbackUrl: { Scheme: 'https', User: true, Host: 'cb.example:8443', Path: '/hook x/ü', RawQuery: 'a=1&b=2' },
    }),
    ctx,
  );
  t.equal(withStruct.callbackUrl, 'https://cb.example:8443/hook%20x/%C3%BC?a=1&b=2', 'put back together; the user is lost');

  const rawPath = decodeQueueRequest(
    undefined,
    goMarshal({ Method: 'POST', Function: 'echo', CallbackUrl: { Scheme: 'http', Host: 'cb.example', Path: '/a/b', RawPath: '/a%2Fb', ForceQuery: true } }),
    ctx,
  );
  t.equal(rawPath.callbackUrl, 'http://cb.example/a%2Fb?', 'RawPath when Go kept one; ForceQuery keeps the "?"');

  const none = decodeQueueRequest(undefined, goMarshal({ Method: 'POST', Function: 'echo', Body: new TextEncoder().encode('x') }), ctx);
  t.equal(none.callbackUrl, undefined, 'no callback');
  t.equal(none.namespace, 'openfaas-fn', 'a Function without a namespace gets function_namespace');
  t.equal(none.path, '');
  t.equal(none.query, '');
  t.same(none.headers, []);
});

t.test('bodies of every length survive base64 with padding; an empty body is left out by Go and decodes as empty', async (t) => {
  for (const length of [0, 1, 2, 3, 4, 5, 1000, 65_537]) {
    const body = new Uint8Array(randomBytes(length));
    const invocation = decodeQueueRequest(undefined, goMarshal({ Method: 'POST', Function: 'echo', Body: body }), ctx);
    t.same(Buffer.from(invocation.body), Buffer.from(body), `${length} bytes`);
  }
});

t.test('without X-Call-Id the call id is derived from the stored message: the same on every delivery', async (t) => {
  const data = goMarshal({ Method: 'POST', Function: 'echo', Header: { 'Content-Type': ['text/plain'] } });
  const first = decodeQueueRequest(undefined, data, ctx).callId;
  t.match(first, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUID (version 8)');
  t.equal(decodeQueueRequest(undefined, data, ctx).callId, first, 'redelivery: same id');
  t.equal(first, derivedCallId(ctx.messageKey));
  t.not(decodeQueueRequest(undefined, data, { ...ctx, messageKey: 'faas-request/43/1700000000000000002' }).callId, first, 'another message: another id');

  const h = natsHeaders();
  h.set(EnvelopeHeader.callId, 'stored-id-1');
  t.equal(decodeQueueRequest(h, data, ctx).callId, 'stored-id-1', "asyncfn's stored call id (a replay) wins over deriving");
  const empty = goMarshal({ Method: 'POST', Function: 'echo', Header: { 'X-Call-Id': [''] } });
  t.equal(decodeQueueRequest(undefined, empty, ctx).callId, first, 'an empty X-Call-Id counts as none');
});

t.test('an X-Call-Id the OpenFaaS gateway accepted but asyncfn cannot keep is replaced, not refused, and the replacement told', async (t) => {
  for (const given of ['order:42', 'job 7', 'x'.repeat(129), '.leading-dot']) {
    const told: Array<[string, string]> = [];
    const data = goMarshal({ Method: 'POST', Function: 'echo', Header: { 'X-Call-Id': [given] } });
    const invocation = decodeQueueRequest(undefined, data, { ...ctx, onCallIdReplaced: (...pair) => told.push(pair) });
    t.equal(invocation.callId, derivedCallId(ctx.messageKey), `${JSON.stringify(given.slice(0, 20))}: the derived call id, the same on every delivery`);
    t.same(told, [[given, invocation.callId]]);

    const replayed = natsHeaders();
    replayed.set(EnvelopeHeader.callId, 'stored-id-1');
    t.equal(decodeQueueRequest(replayed, data, ctx).callId, 'stored-id-1', "asyncfn's stored call id (a replay) when there is one");
  }
  const told: string[] = [];
  const fine = goMarshal({ Method: 'POST', Function: 'echo', Header: { 'X-Call-Id': ['order-42.a'] } });
  t.equal(decodeQueueRequest(undefined, fine, { ...ctx, onCallIdReplaced: (given) => told.push(given) }).callId, 'order-42.a');
  t.same(told, [], 'a call id that can be kept is kept, and nothing is told');
});

t.test('Method defaults to POST; hop-by-hop, asyncfn-, nats- and X-Parent-Call-Id headers are not forwarded', async (t) => {
  const invocation = decodeQueueRequest(
    undefined,
    goMarshal({
      Method: '',
      Function: 'echo',
      Header: {
        Connection: ['keep-alive, X-Hop'],
        'X-Hop': ['1'],
        'Keep-Alive': ['timeout=5'],
        'Content-Length': ['3'],
        'Nats-Msg-Id': ['x'],
        'Asyncfn-Call-Id': ['spoofed'],
        'X-Parent-Call-Id': ['spoofed'],
        'Proxy-Authorization': ['Basic x'],
        'X-Null': null,
        'X-Kept': ['yes'],
      },
    }),
    ctx,
  );
  t.equal(invocation.method, 'POST');
  t.same(invocation.headers, [['x-kept', 'yes']]);
  t.not(invocation.callId, 'spoofed');
});

t.test('max_event_age counts from the store time, or from the enqueue time asyncfn stored (a replay)', async (t) => {
  const data = goMarshal({ Method: 'POST', Function: 'echo' });
  const aging = decodeQueueRequest(undefined, data, { ...ctx, maxEventAgeMs: 60_000 });
  t.equal(aging.expiresAtMs, ctx.storedAtMs + 60_000);
  const h = natsHeaders();
  h.set(EnvelopeHeader.enqueuedAt, '1800000000000');
  const replayed = decodeQueueRequest(h, data, { ...ctx, maxEventAgeMs: 60_000 });
  t.equal(replayed.enqueuedAtMs, 1_800_000_000_000);
  t.equal(replayed.expiresAtMs, 1_800_000_060_000);
});

t.test('malformed QueueRequests are poison, every problem listed', async (t) => {
  const enc = new TextEncoder();
  t.match(
    poisonReasons(() => decodeQueueRequest(undefined, enc.encode('{"Function": "echo", '), ctx)),
    [/^not an OpenFaaS QueueRequest: invalid JSON/],
  );
  t.match(
    poisonReasons(() => decodeQueueRequest(undefined, enc.encode('[1]'), ctx)),
    [/not a JSON object/],
  );
  t.match(
    poisonReasons(() => decodeQueueRequest(undefined, new Uint8Array([0x7b, 0xff, 0x7d]), ctx)),
    [/not UTF-8/],
  );
  t.same(
    poisonReasons(() => decodeQueueRequest(undefined, enc.encode('{"Method":"POST"}'), ctx)),
    ['QueueRequest Function is missing'],
  );
  t.same(
    poisonReasons(() => decodeQueueRequest(undefined, enc.encode('{"Method":"POST","Function":"Bad_Name","Body":"AAE"}'), ctx)),
    ['QueueRequest Function "Bad_Name" is not "name" or "name.namespace" (DNS-1123 labels)', 'QueueRequest Body is not padded standard base64'],
  );
  const reasons = poisonReasons(() =>
    decodeQueueRequest(
      undefined,
      goMarshal({
        Method: 'GET POST',
        Function: 'echo',
        Path: 'no-slash',
        QueryString: 'a=1#frag',
        Header: { 'X-Call-Id': ['has space'], 'X-Bad': ['a\r\nInjected: 1'], 'X-Ctl': ['a\u0001b'], 'X-Wide': ['\u20ac'], 'Bad Name': ['x'] },
        CallbackUrl: { Scheme: 'ftp', Host: 'cb.example', Path: '/x' },
      }),
      ctx,
    ),
  );
  t.same(reasons.sort(), [
    'QueueRequest Header X-Bad has a value no HTTP request can carry (a control character, or one above U+00FF)',
    'QueueRequest Header X-Ctl has a value no HTTP request can carry (a control character, or one above U+00FF)',
    'QueueRequest Header X-Wide has a value no HTTP request can carry (a control character, or one above U+00FF)',
    'QueueRequest Header name "Bad Name" is not an HTTP token',
    'QueueRequest Method is not an HTTP method',
    'QueueRequest Path does not start with "/"',
    'QueueRequest QueryString holds a space, control character or "#"',
    'the callback URL is not an absolute http(s) URL',
  ]);
  t.same(
    poisonReasons(() => decodeQueueRequest(undefined, enc.encode('{"Method":"POST","Function":"echo","Header":{"X-A":"one"},"CallbackUrl":"http://x"}'), ctx)),
    ['QueueRequest Header X-A is not an array of strings', 'QueueRequest CallbackUrl is not a URL object'],
  );
});

t.test('decodeMessage: an envelope stays an envelope (even with a JSON body); a QueueRequest is recognised per message', async (t) => {
  const json = new TextEncoder().encode('{"Function":"not-this"}');
  const invocation: Invocation = testInvocation({
    callId: 'env-1',
    functionName: 'echo',
    body: json,
    callbackUrl: undefined,
    enqueuedAtMs: 1,
    expiresAtMs: undefined,
    traceparent: undefined,
    tracestate: undefined,
  });
  const envelope = encodeEnvelope(invocation);
  let asked = 0;
  const context = (): QueueRequestContext => {
    asked += 1;
    return ctx;
  };
  t.same(decodeMessage(envelope.headers, envelope.data, context), invocation);
  t.equal(asked, 0, 'an envelope never reads the delivery info');

  const request = goMarshal({ Method: 'POST', Function: 'echo', Header: { 'X-Call-Id': ['of-1'] } });
  t.equal(decodeMessage(undefined, request, context).callId, 'of-1');
  const foreign = natsHeaders();
  foreign.set('X-Publisher', 'gateway');
  t.equal(decodeMessage(foreign, new TextEncoder().encode(`\n  ${text(request)}`), context).callId, 'of-1', 'other headers and leading whitespace');

  const neither = poisonReasons(() => decodeMessage(undefined, new TextEncoder().encode('garbage'), context));
  t.match(neither[0], /^missing header Asyncfn-Version/);
  t.equal(neither.at(-1), 'not an OpenFaaS QueueRequest either: the body is not a JSON object');
  const badEnvelope = natsHeaders();
  badEnvelope.set(EnvelopeHeader.version, '9');
  t.notOk(
    poisonReasons(() => decodeMessage(badEnvelope, request, context)).some((r) => r.includes('QueueRequest')),
    'with Asyncfn-Version it is judged as an envelope only',
  );
});

t.test('a dead letter keeps the QueueRequest as published; show and replay decode it under the same call id', async (t) => {
  const data = goMarshal({ Method: 'POST', Function: 'echo', Body: new Uint8Array([1, 2, 3]), Header: { 'X-Custom': ['a'] } });
  const published = natsHeaders();
  published.set('X-Publisher', 'gateway');
  const invocation = decodeQueueRequest(published, data, { ...ctx, defaultNamespace: 'team-a' });
  const stored = storedQueueRequest(invocation, invocation.original!);
  t.equal(stored.data, data, 'the body is the published message itself');
  t.equal(stored.headers?.get('X-Publisher'), 'gateway', "the publisher's headers are kept");

  const letter = encodeDeadLetter(stored, { reason: 'retriesExhausted', queue: 'faas-request', attempts: 3, status: 502, atMs: 5 });
  const decoded = decodeDeadLetter({ seq: 7, header: letter.headers, data: letter.data });
  t.equal(decoded.invocation?.callId, invocation.callId, 'dlq show: the call id it ran under');
  t.equal(decoded.invocation?.namespace, 'team-a', 'and its namespace');
  t.equal(decoded.decodeError, undefined);

  // What `asyncfn dlq replay` publishes, decoded by a worker as a new stream message.
  const replayed: MsgHdrs = replayHeaders(letter.headers, 9_000);
  const again = decodeMessage(replayed, letter.data, () => ({ ...ctx, messageKey: 'faas-request/99/1', storedAtMs: 8_000 }));
  t.same({ ...again, original: undefined }, { ...invocation, enqueuedAtMs: 9_000, original: undefined }, 'the same invocation, enqueued at the replay');
});

t.test("escapePath escapes a decoded path as Go's URL.EscapedPath does", async (t) => {
  t.equal(escapePath(''), '');
  t.equal(escapePath('/a b/ü/%/x+y:z@$&,;=/~._-'), '/a%20b/%C3%BC/%25/x+y:z@$&,;=/~._-');
  t.equal(escapePath('/?#[]!\'()*"<>'), '/%3F%23%5B%5D%21%27%28%29%2A%22%3C%3E');
});
