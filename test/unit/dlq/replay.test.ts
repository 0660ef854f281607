import { headers as natsHeaders, Match } from '@nats-io/nats-core';
import t from 'tap';
import { decodeCallback, encodeCallback } from '../../../src/callback/stored.js';
import { replayHeaders, replaySubject } from '../../../src/dead-letters/replay.js';
import { DeadLetterHeader, encodeDeadLetter } from '../../../src/queue/dead-letter.js';
import { decodeEnvelope, encodeEnvelope, EnvelopeHeader, type Invocation } from '../../../src/queue/envelope.js';
import { laneKeyToken } from '../../../src/queue/lanes.js';

const invocation: Invocation = {
  callId: 'call-1',
  functionName: 'echo',
  namespace: 'openfaas-fn',
  method: 'POST',
  path: '/p',
  query: 'a=1',
  headers: [
    ['x-multi', 'one'],
    ['x-multi', 'two'],
  ],
  body: new Uint8Array([1, 2, 3]),
  callbackUrl: 'http://cb.test/',
  enqueuedAtMs: 1_000,
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

t.test('replay headers: the original envelope, no dead-letter headers, enqueued now', async (t) => {
  const letter = encodeDeadLetter(encodeEnvelope(invocation), {
    reason: 'expired',
    queue: 'faas-request',
    attempts: 0,
    status: 504,
    error: 'too old',
    atMs: 2_000,
  });
  letter.headers.set('Nats-Msg-Size', '3');
  const h = replayHeaders(letter.headers, 5_000);
  for (const name of Object.values(DeadLetterHeader)) t.notOk(h.has(name, Match.IgnoreCase), `${name} removed`);
  t.notOk(h.has('Nats-Msg-Size', Match.IgnoreCase), 'server headers removed');
  t.same(h.values(EnvelopeHeader.enqueuedAt, Match.IgnoreCase), ['5000']);
  t.same(decodeEnvelope(h, invocation.body), { ...invocation, enqueuedAtMs: 5_000, tracestate: undefined }, 'same invocation, enqueued now');
});

t.test('replay headers: a lower-case enqueue header is replaced, not duplicated', async (t) => {
  const h = natsHeaders();
  h.set('asyncfn-enqueued-at', '1');
  h.set('asyncfn-dlq-reason', 'expired');
  const out = replayHeaders(h, 9);
  t.same(out.values(EnvelopeHeader.enqueuedAt, Match.IgnoreCase), ['9']);
  t.same(out.keys(), [EnvelopeHeader.enqueuedAt]);
  t.same(replayHeaders(undefined, 9).keys(), [EnvelopeHeader.enqueuedAt]);
});

t.test("a failed callback replayed: the direct attempt's status is dropped, the result kept", async (t) => {
  const outcome = { status: 200, contentType: 'text/plain', body: new Uint8Array([7]), startedAtMs: 1_500, durationMs: 3 };
  const pending = encodeCallback('faas-request', { invocation, outcome, attempt: 2, maxAttempts: 3 }, 'callback failed: receiver answered 404', 404);
  t.equal(decodeCallback(pending.headers, pending.data).directStatus, 404, 'the hand-off carries it');
  const letter = encodeDeadLetter(
    { headers: pending.headers, data: pending.data },
    {
      reason: 'callbackFailed',
      queue: 'faas-request',
      attempts: 1,
      error: 'receiver answered 404 (permanent)',
      atMs: 2_000,
    },
  );
  const replayed = decodeCallback(replayHeaders(letter.headers, 5_000), pending.data);
  t.equal(replayed.directStatus, undefined, 'a replay is posted again');
  t.match(replayed.request, { outcome: { status: 200, startedAtMs: 1_500, durationMs: 3 }, attempt: 2, maxAttempts: 3 });
});

t.test("replay subject: the function's lane, or its key's, when the queue's stream takes lanes; else the queue's plain subject", async (t) => {
  const letter = (over: Partial<Invocation> = {}, queue = 'faas-request') => ({ queue, reason: 'retriesExhausted' as const, invocation: { ...invocation, ...over } });
  t.equal(replaySubject(letter(), true), 'faas-request.f.echo.openfaas-fn', "the function's lane: its max_inflight and rate limit hold");
  t.equal(replaySubject(letter({}, 'slow'), true), 'slow.f.echo.openfaas-fn', 'a named queue');
  t.equal(replaySubject(letter({}, ''), true), 'faas-request.f.echo.openfaas-fn', 'no queue named: faas-request');
  t.equal(replaySubject(letter({ headers: [['x-concurrency-key', 'tenant-1']] }), true), 'faas-request.k.echo.openfaas-fn.tenant-1', "an X-Concurrency-Key's lane");
  t.equal(
    replaySubject(letter({ headers: [['x-concurrency-key', 'a b.c']] }), true),
    `faas-request.k.echo.openfaas-fn.${laneKeyToken('a b.c')}`,
    'a key that is no subject token: hashed, as the gateway does',
  );
  t.equal(replaySubject(letter({ functionName: 'Not.A.Label' }), true), 'faas-request', 'a name no lane can hold: the plain subject');
  t.equal(replaySubject(letter(), false), 'faas-request', 'a stream without lanes: the plain subject');
  t.equal(replaySubject(letter({}, 'slow'), false), 'slow');
  t.equal(replaySubject({ queue: '', reason: 'poison', invocation: undefined }, true), 'faas-request', 'poison (never published) names its queue');
  t.equal(replaySubject({ ...letter(), reason: 'callbackFailed' }, true), 'asyncfn.callbacks.faas-request', 'a failed callback: the callback stream, never a lane');
});
