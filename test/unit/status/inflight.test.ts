import t from 'tap';
import type { InFlightInvocation } from '../../../actors/queue.supervisor.js';
import {
  buildInFlightReply,
  encodeInFlightReply,
  INFLIGHT_DEFAULT_LIMIT,
  INFLIGHT_MAX_LIMIT,
  limitOf,
  parseInFlightRequest,
  parseWorkerInFlight,
  type InFlightSource,
} from '../../../src/status/inflight.js';

const NOW = 1_000_000;

function inv(callId: string, overrides: Partial<InFlightInvocation> = {}): InFlightInvocation {
  return { callId, functionName: 'fn', namespace: 'openfaas-fn', queue: 'q', lane: '', state: 'invoking', attempt: 1, startedAtMs: NOW - 100, ...overrides };
}

function source(queue: string, invocations: InFlightInvocation[], maxInflight = 10): InFlightSource {
  return { queue, maxInflight, inFlight: () => invocations.map((i) => ({ ...i, queue })) };
}

const encoder = new TextEncoder();

t.test('counts by state over every queue, lists the oldest first, one entry per invocation with its elapsed time', async (t) => {
  const reply = buildInFlightReply(
    'host:1',
    [
      source('q1', [inv('a', { startedAtMs: NOW - 50 }), inv('b', { state: 'callback', startedAtMs: NOW - 500, lane: 'fn.openfaas-fn' })]),
      source('q2', [inv('c', { state: 'retrying', attempt: 3, startedAtMs: NOW - 200 })], 4),
    ],
    {},
    NOW,
  );
  t.equal(reply.worker, 'host:1');
  t.equal(reply.at, NOW);
  t.same(reply.queues, [
    { queue: 'q1', maxInflight: 10, inFlight: 2 },
    { queue: 'q2', maxInflight: 4, inFlight: 1 },
  ]);
  t.equal(reply.total, 3);
  t.same(reply.byState, { invoking: 1, callback: 1, retrying: 1 });
  t.equal(reply.truncated, false);
  t.same(
    reply.invocations.map((i) => i.callId),
    ['b', 'c', 'a'],
    'oldest first',
  );
  t.same(reply.invocations[0], {
    callId: 'b',
    function: 'fn',
    namespace: 'openfaas-fn',
    queue: 'q1',
    lane: 'fn.openfaas-fn',
    state: 'callback',
    attempt: 1,
    startedAtMs: NOW - 500,
    elapsedMs: 500,
  });
  t.notOk('lane' in reply.invocations[1]!, "the queue's own lane is not named");
});

t.test('a function filter keeps its invocations (name or name.namespace); queue counts stay whole', async (t) => {
  const sources = [source('q', [inv('a'), inv('b', { functionName: 'other' }), inv('c', { namespace: 'team', state: 'callback' })])];
  const byName = buildInFlightReply('w', sources, { function: 'fn' }, NOW);
  t.same(
    byName.invocations.map((i) => i.callId),
    ['a', 'c'],
  );
  t.equal(byName.total, 2);
  t.same(byName.byState, { invoking: 1, callback: 1 });
  t.same(byName.queues, [{ queue: 'q', maxInflight: 10, inFlight: 3 }], 'the queue shows every invocation in flight');
  const qualified = buildInFlightReply('w', sources, { function: 'fn.team' }, NOW);
  t.same(
    qualified.invocations.map((i) => i.callId),
    ['c'],
  );
  const none = buildInFlightReply('w', sources, { function: 'missing' }, NOW);
  t.same([none.total, none.invocations, none.byState, none.truncated], [0, [], {}, false]);
});

t.test('a limit cuts the list, not the counts, and says so', async (t) => {
  const many = Array.from({ length: 7 }, (_, i) => inv(`c${i}`, { startedAtMs: NOW - 1000 + i, state: i % 2 === 0 ? 'invoking' : 'callback' }));
  const reply = buildInFlightReply('w', [source('q', many)], { limit: 3 }, NOW);
  t.same(
    reply.invocations.map((i) => i.callId),
    ['c0', 'c1', 'c2'],
  );
  t.equal(reply.total, 7);
  t.same(reply.byState, { invoking: 4, callback: 3 });
  t.equal(reply.truncated, true);
  t.equal(buildInFlightReply('w', [source('q', many)], { limit: 7 }, NOW).truncated, false, 'exactly the limit is whole');
});

t.test('limits: default 500, at most 2000, at least 1', async (t) => {
  t.equal(limitOf({}), INFLIGHT_DEFAULT_LIMIT);
  t.equal(INFLIGHT_DEFAULT_LIMIT, 500);
  t.equal(limitOf({ limit: 1_000_000 }), INFLIGHT_MAX_LIMIT);
  t.equal(INFLIGHT_MAX_LIMIT, 2000);
  t.equal(limitOf({ limit: 0 }), 1);
  t.equal(limitOf({ limit: Number.NaN }), INFLIGHT_DEFAULT_LIMIT);
  const many = Array.from({ length: 2500 }, (_, i) => inv(`c${i}`));
  const reply = buildInFlightReply('w', [source('q', many)], {}, NOW);
  t.equal(reply.invocations.length, 500);
  t.equal(reply.total, 2500);
});

t.test('an encoded reply larger than its byte budget drops entries until it fits, and stays honest', async (t) => {
  const longIds = Array.from({ length: 400 }, (_, i) => inv(`${'x'.repeat(200)}-${i}`));
  const reply = buildInFlightReply('w', [source('q', longIds)], { limit: 2000 }, NOW);
  t.equal(reply.truncated, false);
  const whole = encodeInFlightReply(reply, 10 * 1024 * 1024);
  t.same(parseWorkerInFlight(whole)?.invocations.length, 400, 'within budget: unchanged');
  const bytes = encodeInFlightReply(reply, 20_000);
  t.ok(bytes.length <= 20_000, `${bytes.length} bytes`);
  const decoded = parseWorkerInFlight(bytes)!;
  t.ok(decoded.invocations.length > 0 && decoded.invocations.length < 400, `${decoded.invocations.length} entries kept`);
  t.equal(decoded.truncated, true);
  t.equal(decoded.total, 400, 'the count is whole');
  t.same(decoded.byState, { invoking: 400 });
});

t.test('a request body: JSON {function, limit}; anything else is the default request', async (t) => {
  t.same(parseInFlightRequest(new Uint8Array()), {});
  t.same(parseInFlightRequest(encoder.encode('{"function":"fn","limit":20}')), { function: 'fn', limit: 20 });
  t.same(parseInFlightRequest(encoder.encode('{"function":"","limit":"20"}')), { function: undefined, limit: undefined });
  t.same(parseInFlightRequest(encoder.encode('not json')), {});
  t.same(parseInFlightRequest(encoder.encode('[1]')), { function: undefined, limit: undefined });
});

t.test('a reply the gateway cannot read is not a worker', async (t) => {
  t.equal(parseWorkerInFlight(encoder.encode('nope')), undefined);
  t.equal(parseWorkerInFlight(encoder.encode('null')), undefined);
  t.equal(parseWorkerInFlight(encoder.encode('{"worker":"w"}')), undefined);
  t.same(parseWorkerInFlight(encoder.encode('{"worker":"w","invocations":[],"total":0}'))?.worker, 'w');
});
