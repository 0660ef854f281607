import { INVALID_SPAN_CONTEXT, trace } from '@opentelemetry/api';
import t from 'tap';
import { AsyncFnError, FunctionNotFoundError } from '../../../src/errors.js';
import type { ResolvedFunction } from '../../../src/functions/index.js';
import { CallbackRefusedError } from '../../../src/callback/target-guard.js';
import { enqueue, type EnqueuePorts, type EnqueueRequest, type EnqueueResult } from '../../../src/gateway/enqueue.js';
import { BadAnnotationError } from '../../../src/gateway/queue-router.js';
import { delayedSubject } from '../../../src/queue/topology.js';
import type { Invocation } from '../../../src/queue/envelope.js';
import { ConfirmTimeoutError } from '../../../src/queue/confirmer-errors.js';
import { QueueUnavailableError } from '../../../src/queue/errors.js';
import type { PublishOptions } from '../../../src/queue/publisher.js';
import { decodeClaim, encodeClaim, type IdempotencyClaim } from '../../../src/status/idempotency.js';
import type { InvocationRecord } from '../../../src/status/records.js';
import type { QueuedGroups, QueuedMember } from '../../../src/status/queued-groups.js';

const ECHO: ResolvedFunction = { name: 'echo', namespace: 'openfaas-fn', url: 'http://127.0.0.1:1/', annotations: {} };
const NOW = 1_700_000_000_000;

/** One request as the route would build it; `over` replaces fields. */
function request(over: Partial<EnqueueRequest> = {}): EnqueueRequest {
  return {
    ref: { name: 'echo', namespace: 'openfaas-fn' },
    rawName: 'echo',
    method: 'POST',
    path: '/sub',
    query: 'a=1',
    headers: [['content-type', 'text/plain']],
    body: new TextEncoder().encode('hi'),
    callerCallId: undefined,
    callbackUrl: undefined,
    idempotencyKey: undefined,
    storeResult: undefined,
    enqueuedAtMs: NOW,
    notBeforeMs: undefined,
    traceparent: undefined,
    tracestate: undefined,
    span: trace.wrapSpanContext(INVALID_SPAN_CONTEXT),
    ...over,
  };
}

interface Published {
  readonly subject: string;
  readonly invocation: Invocation;
  readonly timeoutMs: number | undefined;
}

/** Fake ports that record every call; each behaviour can be replaced. */
function fakePorts(over: Partial<EnqueuePorts> = {}) {
  const calls = {
    published: [] as Published[],
    /** Records written unconfirmed, in the publish's socket write (beforeSend). */
    unconfirmed: [] as InvocationRecord[],
    createdIfAbsent: [] as InvocationRecord[],
    deleted: [] as string[],
    claimed: [] as Array<{ scope: string; key: string; callId: string }>,
    released: [] as IdempotencyClaim[],
  };
  let ids = 0;
  const ports: { -readonly [K in keyof EnqueuePorts]: EnqueuePorts[K] } = {
    resolver: { resolve: async (ref) => (ref.name === 'echo' ? ECHO : undefined) },
    checkCallback: async () => undefined,
    router: {
      route: async (_fn, enqueuedAtMs) => ({ queue: 'faas-request', subject: 'faas-request', queueSubject: 'faas-request', expiresAtMs: enqueuedAtMs + 60_000 }),
    },
    records: {
      createIfAbsent: async (record) => {
        calls.createdIfAbsent.push(record);
        return true;
      },
      createUnconfirmed: (record) => void calls.unconfirmed.push(record),
      delete: async (callId) => void calls.deleted.push(callId),
    },
    idempotency: {
      claim: async (scope, key, callId) => {
        calls.claimed.push({ scope, key, callId });
        return { first: true, callId, msgId: `msg-${key}`, kvKey: `kv-${key}` };
      },
      release: async (claim) => void calls.released.push(claim),
    },
    publisher: {
      publish: async (subject: string, invocation: Invocation, timeoutMs?: number, opts?: PublishOptions) => {
        opts?.beforeSend?.();
        calls.published.push({ subject, invocation, timeoutMs });
        return { seq: calls.published.length, duplicate: false };
      },
    },
    newCallId: () => `generated-${++ids}`,
    logger: { debug: () => {} },
    publishTimeoutMs: 1000,
    ...over,
  };
  return { ports, calls };
}

function refusal(result: EnqueueResult): AsyncFnError {
  if (result.outcome !== 'refused') throw new Error(`expected a refusal, got ${result.outcome}`);
  return result.error;
}

t.test('accepted: a fresh call id, the queued record in the publish, then the PubAck', async (t) => {
  const { ports, calls } = fakePorts();
  const result = await enqueue(ports, request({ callbackUrl: 'http://127.0.0.1:9/cb', storeResult: true, traceparent: '00-a-b-01' }));
  t.same(result, { outcome: 'accepted', callId: 'generated-1', parentCallId: undefined });
  t.equal(calls.published.length, 1);
  const { subject, invocation, timeoutMs } = calls.published[0]!;
  t.equal(subject, 'faas-request');
  t.ok(timeoutMs !== undefined && timeoutMs > 0 && timeoutMs <= 1000, 'the publish gets what is left of publish_timeout');
  t.match(invocation, {
    callId: 'generated-1',
    parentCallId: undefined,
    functionName: 'echo',
    namespace: 'openfaas-fn',
    method: 'POST',
    path: '/sub',
    query: 'a=1',
    callbackUrl: 'http://127.0.0.1:9/cb',
    enqueuedAtMs: NOW,
    expiresAtMs: NOW + 60_000,
    storeResult: true,
    msgId: undefined,
    traceparent: '00-a-b-01',
  });
  t.same(
    calls.unconfirmed.map((r) => [r.callId, r.state, r.queue]),
    [['generated-1', 'queued', 'faas-request']],
    'one unconfirmed record',
  );
  t.same(calls.createdIfAbsent, [], 'no round trip before the publish');
  t.same(calls.deleted, []);
});

t.test('a delayed invocation goes to the delayed stream, scheduled, its max age counted from when it may run', async (t) => {
  const { ports, calls } = fakePorts();
  await enqueue(ports, request({ notBeforeMs: NOW + 5_000 }));
  t.equal(calls.published[0]!.subject, delayedSubject('faas-request'));
  t.equal(calls.published[0]!.invocation.expiresAtMs, NOW + 65_000);
  t.equal(calls.unconfirmed[0]!.state, 'scheduled');
});

t.test("a caller's free X-Call-Id is kept, its record written (confirmed) before the publish", async (t) => {
  const { ports, calls } = fakePorts();
  const result = await enqueue(ports, request({ callerCallId: 'mine' }));
  t.same(result, { outcome: 'accepted', callId: 'mine', parentCallId: undefined });
  t.same(
    calls.createdIfAbsent.map((r) => r.callId),
    ['mine'],
  );
  t.same(calls.unconfirmed, [], 'not written twice');
  t.equal(calls.published[0]!.invocation.callId, 'mine');
});

t.test("a caller's X-Call-Id naming another invocation is a chained call: a fresh id, the caller's as parent", async (t) => {
  const { ports, calls } = fakePorts();
  ports.records.createIfAbsent = async (record) => {
    calls.createdIfAbsent.push(record);
    return false;
  };
  const result = await enqueue(ports, request({ callerCallId: 'first' }));
  t.same(result, { outcome: 'accepted', callId: 'generated-1', parentCallId: 'first' });
  t.match(calls.published[0]!.invocation, { callId: 'generated-1', parentCallId: 'first' });
  t.match(calls.unconfirmed, [{ callId: 'generated-1', parentCallId: 'first' }]);
});

t.test('Idempotency-Key: the first request claims it and publishes with its Nats-Msg-Id', async (t) => {
  const { ports, calls } = fakePorts();
  const result = await enqueue(ports, request({ idempotencyKey: 'k1' }));
  t.same(result, { outcome: 'accepted', callId: 'generated-1', parentCallId: undefined });
  t.same(calls.claimed, [{ scope: 'openfaas-fn/echo', key: 'k1', callId: 'generated-1' }]);
  t.equal(calls.published[0]!.invocation.msgId, 'msg-k1');
});

t.test("Idempotency-Key repeated: a duplicate with the first request's call id, published under it, no chain", async (t) => {
  const { ports, calls } = fakePorts();
  ports.records.createIfAbsent = async (record) => {
    calls.createdIfAbsent.push(record);
    return false; // the caller's X-Call-Id is taken: it would be a chain, but a repeat is none
  };
  ports.idempotency.claim = async (_scope, key) => ({ first: false, callId: 'the-first', msgId: `msg-${key}`, kvKey: 'kv' });
  const result = await enqueue(ports, request({ idempotencyKey: 'k1', callerCallId: 'parent' }));
  t.same(result, { outcome: 'duplicate', callId: 'the-first' });
  t.match(calls.published[0]!.invocation, { callId: 'the-first', parentCallId: undefined, msgId: 'msg-k1' });
  t.match(calls.unconfirmed, [{ callId: 'the-first' }]);
});

t.test("a repeat keeps the first request's schedule, not its own: its copy goes where the first's went", async (t) => {
  const later = Date.now() + 3_600_000;
  // The first was delayed, the repeat is not: the repeat goes to the delayed stream too, scheduled as the first.
  const delayedFirst = fakePorts();
  delayedFirst.ports.idempotency.claim = async (_scope, key) => ({ first: false, callId: 'the-first', notBeforeMs: later, msgId: `msg-${key}`, kvKey: 'kv' });
  t.same(await enqueue(delayedFirst.ports, request({ idempotencyKey: 'k1' })), { outcome: 'duplicate', callId: 'the-first' });
  t.equal(delayedFirst.calls.published[0]!.subject, delayedSubject('faas-request'));
  t.match(delayedFirst.calls.published[0]!.invocation, { callId: 'the-first', notBeforeMs: later, msgId: 'msg-k1' });
  t.match(delayedFirst.calls.unconfirmed, [{ callId: 'the-first', state: 'scheduled', notBeforeMs: later }]);

  // The first was not delayed, the repeat is: the repeat goes to the queue, now.
  const immediateFirst = fakePorts();
  immediateFirst.ports.idempotency.claim = async (_scope, key) => ({ first: false, callId: 'the-first', msgId: `msg-${key}`, kvKey: 'kv' });
  t.same(await enqueue(immediateFirst.ports, request({ idempotencyKey: 'k1', notBeforeMs: later })), { outcome: 'duplicate', callId: 'the-first' });
  t.equal(immediateFirst.calls.published[0]!.subject, 'faas-request');
  t.match(immediateFirst.calls.published[0]!.invocation, { callId: 'the-first', notBeforeMs: undefined, msgId: 'msg-k1' });
  t.match(immediateFirst.calls.unconfirmed, [{ callId: 'the-first', state: 'queued' }]);
});

t.test('a claim holds the call id, and the not-before time when delayed; a bare call id is an undelayed claim', async (t) => {
  t.equal(encodeClaim('abc', undefined), 'abc', 'as an older gateway wrote and reads it');
  t.same(decodeClaim(encodeClaim('a.b-c=d_1', 1_700_000_000_000)), { callId: 'a.b-c=d_1', notBeforeMs: 1_700_000_000_000 });
  t.same(decodeClaim('abc'), { callId: 'abc', notBeforeMs: undefined });
  t.same(decodeClaim('abc x'), { callId: 'abc', notBeforeMs: undefined });
});

t.test('a repeat whose X-Call-Id record was created early drops that record', async (t) => {
  const { ports, calls } = fakePorts();
  ports.idempotency.claim = async (_scope, key) => ({ first: false, callId: 'the-first', msgId: `msg-${key}`, kvKey: 'kv' });
  const result = await enqueue(ports, request({ idempotencyKey: 'k1', callerCallId: 'mine' }));
  t.same(result, { outcome: 'duplicate', callId: 'the-first' });
  t.same(calls.deleted, ['mine']);
});

t.test('refused before any JetStream write: unknown function, refused callback target, bad annotation', async (t) => {
  const { ports, calls } = fakePorts();
  const notFound = refusal(await enqueue(ports, request({ ref: { name: 'nope', namespace: 'openfaas-fn' }, rawName: 'nope' })));
  t.ok(notFound instanceof FunctionNotFoundError);
  t.match(notFound, { httpStatus: 404, message: 'function "nope" not found' });

  const guard = new CallbackRefusedError('127.0.0.1', '127.0.0.1', 'loopback');
  ports.checkCallback = async () => guard;
  t.equal(refusal(await enqueue(ports, request({ callbackUrl: 'http://127.0.0.1/cb' }))), guard);

  ports.checkCallback = async () => undefined;
  ports.router = { route: async () => Promise.reject(new BadAnnotationError('echo', 'com.openfaas.queue', 'Bad!')) };
  t.match(refusal(await enqueue(ports, request())), { code: 'ASYNCFN_ERR_BAD_ANNOTATION', httpStatus: 500 });
  t.same([calls.published, calls.claimed, calls.createdIfAbsent, calls.deleted], [[], [], [], []]);
});

t.test('a callback URL the check allowed for good before is not checked again; any other is', async (t) => {
  const { ports } = fakePorts();
  const checked: string[] = [];
  ports.checkCallback = Object.assign(
    async (url: URL) => {
      checked.push(url.href);
      return undefined;
    },
    { allowed: (href: string) => href === 'http://10.0.0.1/known' },
  );
  t.equal((await enqueue(ports, request({ callbackUrl: 'http://10.0.0.1/known' }))).outcome, 'accepted');
  t.equal((await enqueue(ports, request({ callbackUrl: 'http://10.0.0.1/new' }))).outcome, 'accepted');
  t.same(checked, ['http://10.0.0.1/new']);
});

t.test('a failure that is no coded error is a bug: it rejects', async (t) => {
  const { ports } = fakePorts();
  ports.resolver = { resolve: async () => Promise.reject(new TypeError('boom')) };
  await t.rejects(enqueue(ports, request()), TypeError);
});

t.test('a publish that surely failed: 503, the record dropped and the claim given back', async (t) => {
  const { ports, calls } = fakePorts();
  ports.publisher = { publish: async () => Promise.reject(new QueueUnavailableError('no responders')) };
  const error = refusal(await enqueue(ports, request({ idempotencyKey: 'k1' })));
  t.match(error, { code: 'ASYNCFN_ERR_QUEUE_UNAVAILABLE', httpStatus: 503, outcomeUnknown: false });
  t.same(calls.deleted, ['generated-1']);
  t.same(
    calls.released.map((c) => c.callId),
    ['generated-1'],
  );
});

t.test('a publish that may have been stored (no answer in time): 503, the record dropped, the claim kept', async (t) => {
  const { ports, calls } = fakePorts({ publishTimeoutMs: 50 });
  const given: number[] = [];
  // As the publisher answers once its confirmer's sweep finds no PubAck by the time it was given.
  ports.publisher = {
    publish: (subject, _invocation, timeoutMs) => {
      given.push(timeoutMs!);
      return Promise.reject(
        new QueueUnavailableError('JetStream did not acknowledge the publish in time', { cause: new ConfirmTimeoutError(subject, timeoutMs!), outcomeUnknown: true }),
      );
    },
  };
  const error = refusal(await enqueue(ports, request({ idempotencyKey: 'k1' })));
  t.ok(given.length === 1 && given[0]! > 0 && given[0]! <= 50, `the publish is given what is left of publish_timeout (${given[0]} ms)`);
  t.ok(error instanceof QueueUnavailableError);
  t.match(error, { httpStatus: 503, outcomeUnknown: true, message: /JetStream did not confirm the publish within publish_timeout \(50 ms\)/ });
  t.same(calls.deleted, ['generated-1']);
  t.same(calls.released, [], 'a resend with the key must answer this call id');
});

t.test("a repeat's failed publish leaves the first request's record and claim alone", async (t) => {
  const { ports, calls } = fakePorts();
  ports.idempotency.claim = async (_scope, key) => ({ first: false, callId: 'the-first', msgId: `msg-${key}`, kvKey: 'kv' });
  ports.publisher = { publish: async () => Promise.reject(new QueueUnavailableError('no responders')) };
  t.match(refusal(await enqueue(ports, request({ idempotencyKey: 'k1' }))), { httpStatus: 503 });
  t.same([calls.deleted, calls.released], [[], []]);
});

t.test('record writes: a failed early record is a 503; a failed claim after it drops that record', async (t) => {
  const { ports, calls } = fakePorts();
  ports.records.createIfAbsent = async () => Promise.reject(new Error('KV down'));
  const error = refusal(await enqueue(ports, request({ callerCallId: 'mine' })));
  t.match(error, { code: 'ASYNCFN_ERR_QUEUE_UNAVAILABLE', httpStatus: 503, message: 'queue unavailable: KV down' });
  t.same([calls.published, calls.deleted], [[], []], 'nothing published, nothing to drop');

  const second = fakePorts();
  second.ports.idempotency.claim = async () => Promise.reject(new Error('KV down'));
  t.match(refusal(await enqueue(second.ports, request({ callerCallId: 'mine', idempotencyKey: 'k1' }))), { httpStatus: 503 });
  t.same(second.calls.deleted, ['mine']);
  t.same(second.calls.published, []);
});

t.test('a record write that throws in the publish (beforeSend) refuses and cleans up like a failed publish', async (t) => {
  const { ports, calls } = fakePorts();
  ports.records.createUnconfirmed = () => {
    throw new Error('socket gone');
  };
  t.match(refusal(await enqueue(ports, request({ idempotencyKey: 'k1' }))), { code: 'ASYNCFN_ERR_QUEUE_UNAVAILABLE', httpStatus: 503 });
  t.same(calls.published, []);
  t.same(calls.deleted, ['generated-1']);
  t.same(
    calls.released.map((c) => c.callId),
    ['generated-1'],
  );
});

t.test('every JetStream round trip shares one publish_timeout: a slow claim leaves the publish no time', async (t) => {
  const { ports, calls } = fakePorts({ publishTimeoutMs: 60 });
  ports.idempotency.claim = (_scope, key, callId) => new Promise((resolve) => setTimeout(() => resolve({ first: true, callId, msgId: `msg-${key}`, kvKey: 'kv' }), 200));
  const error = refusal(await enqueue(ports, request({ idempotencyKey: 'k1' })));
  t.match(error, { httpStatus: 503, message: /the idempotency key within publish_timeout \(60 ms\)/ });
  t.same(calls.published, []);
});

t.test('a queue already provisioned is routed at once (routeNow); otherwise through route, within the deadline', async (t) => {
  const { ports, calls } = fakePorts();
  const asked: string[] = [];
  const now = { queue: 'faas-request', subject: 'faas-request.echo', queueSubject: 'faas-request', expiresAtMs: undefined };
  ports.router = {
    route: async () => {
      asked.push('route');
      return { ...now, subject: 'faas-request' };
    },
    routeNow: () => {
      asked.push('routeNow');
      return now;
    },
  };
  t.equal((await enqueue(ports, request())).outcome, 'accepted');
  t.same(asked, ['routeNow'], 'route is not called');
  t.equal(calls.published[0]?.subject, 'faas-request.echo');

  ports.router = { ...ports.router, routeNow: () => (asked.push('routeNow'), undefined) };
  t.equal((await enqueue(ports, request())).outcome, 'accepted');
  t.same(asked, ['routeNow', 'routeNow', 'route'], 'not provisioned yet: route');
  t.equal(calls.published[1]?.subject, 'faas-request');

  ports.router = {
    route: async () => now,
    routeNow: () => {
      throw new BadAnnotationError('echo', 'com.openfaas.queue', 'Bad!');
    },
  };
  t.match(refusal(await enqueue(ports, request())), { code: 'ASYNCFN_ERR_BAD_ANNOTATION', httpStatus: 500 }, 'a bad annotation is refused as before');
  t.equal(calls.published.length, 2);
});

/** Queued groups that record what they admitted (src/status/queued-groups.ts). */
function fakeGroups() {
  const admitted: Array<{ callId: string; member: QueuedMember }> = [];
  const withdrawn: string[] = [];
  let written = false;
  const groups: QueuedGroups = {
    admit: (member) => {
      const callId = `grouped-${admitted.length + 1}`;
      admitted.push({ callId, member });
      return callId;
    },
    withdraw: (callId) => {
      if (written) return false;
      withdrawn.push(callId);
      return true;
    },
  };
  return { groups, admitted, withdrawn, markWritten: () => void (written = true) };
}

t.test('the default path: its call id and queued record come from its group, no record of its own', async (t) => {
  const { groups, admitted } = fakeGroups();
  const { ports, calls } = fakePorts({ queuedGroups: groups });
  const result = await enqueue(ports, request());
  t.same(result, { outcome: 'accepted', callId: 'grouped-1', parentCallId: undefined });
  t.same(admitted, [{ callId: 'grouped-1', member: { functionName: 'echo', namespace: 'openfaas-fn', queue: 'faas-request', enqueuedAtMs: NOW } }]);
  t.equal(calls.published[0]?.invocation.callId, 'grouped-1');
  t.same(calls.unconfirmed, [], 'no second write for the 202');
});

t.test("a caller's call id, an Idempotency-Key and a delay keep a record of their own", async (t) => {
  for (const [what, over] of [
    ['X-Call-Id', { callerCallId: 'mine' }],
    ['Idempotency-Key', { idempotencyKey: 'k1' }],
    ['delay', { notBeforeMs: NOW + 5_000 }],
  ] as const) {
    const { groups, admitted } = fakeGroups();
    const { ports, calls } = fakePorts({ queuedGroups: groups });
    const result = await enqueue(ports, request(over));
    t.equal(result.outcome, 'accepted', what);
    t.same(admitted, [], `${what}: not grouped`);
    t.equal(calls.unconfirmed.length + calls.createdIfAbsent.length, 1, `${what}: its own record`);
  }
});

t.test('a grouped invocation refused at its publish leaves its group, or has its record deleted once the group is written', async (t) => {
  const unwritten = fakeGroups();
  const early = fakePorts({
    queuedGroups: unwritten.groups,
    publisher: {
      publish: async () => {
        throw new QueueUnavailableError('not connected to NATS');
      },
    },
  });
  t.equal(refusal(await enqueue(early.ports, request())).httpStatus, 503);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(unwritten.withdrawn, ['grouped-1'], 'refused before its group was written: withdrawn');
  t.same(early.calls.deleted, [], 'no write for it');

  const { groups, markWritten } = fakeGroups();
  markWritten();
  const { ports, calls } = fakePorts({
    queuedGroups: groups,
    publisher: {
      publish: async () => {
        throw new QueueUnavailableError('JetStream did not acknowledge the publish in time', { outcomeUnknown: true });
      },
    },
  });
  const result = await enqueue(ports, request());
  t.equal(refusal(result).httpStatus, 503);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(calls.deleted, ['grouped-1']);
});

t.test('refused before its publish (no such function): no call id is admitted', async (t) => {
  const { groups, admitted } = fakeGroups();
  const { ports } = fakePorts({ queuedGroups: groups });
  const result = await enqueue(ports, request({ ref: { name: 'nope', namespace: 'openfaas-fn' }, rawName: 'nope' }));
  t.equal(refusal(result).httpStatus, 404);
  t.same(admitted, []);
});
