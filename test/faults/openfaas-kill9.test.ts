import { randomUUID } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { duplicates } from '../helpers/enqueue.js';
import { gatewayQueueRequest } from '../helpers/go-queue-request.js';

const COUNT = 200;
const IN_FLIGHT = 50;

t.test(`kill -9 of a worker running OpenFaaS QueueRequests loses none of ${COUNT}: a new worker calls back every one`, async (t) => {
  // The function holds every call until the first worker is dead, so 50 are surely in flight (and
  // 150 still waiting in the stream) when it is killed; afterwards it echoes at once.
  const killed = deferred<void>();
  const { nats, fn, sink, workerEnv } = await startProcessStack(t, async (req, res) => {
    await killed.promise;
    if (!res.destroyed) res.writeHead(200, { 'content-type': 'text/plain' }).end(req.body);
  });
  const env = { ...workerEnv, max_inflight: String(IN_FLIGHT), ack_wait: '2s' };
  // The worker provisions the stream the OpenFaaS gateway publishes to.
  const first = await spawnAsyncfn(t, 'worker', env);

  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const js = jetstream(nc);
  // Half carry the gateway's X-Call-Id, half none (the worker derives one from the stored message).
  const callIds = new Map<string, string | undefined>();
  for (let i = 0; i < COUNT; i++) {
    const body = `job-${i}`;
    const callId = i % 2 === 0 ? randomUUID() : undefined;
    callIds.set(body, callId);
    await js.publish('faas-request', gatewayQueueRequest({ fn: 'work', body, callId, callbackUrl: sink.url }));
  }
  await fn.waitForConcurrent(IN_FLIGHT);
  await first.kill9();
  t.equal(sink.received.length, 0, `killed while ${IN_FLIGHT} were running and none had been called back`);
  killed.resolve();

  await spawnAsyncfn(t, 'worker', env);
  // At least once: a callback may come twice, so the wait is for every job's, not for COUNT callbacks.
  await sink.waitForDistinct(COUNT, (cb) => cb.body.toString(), 60_000);
  // Every published job got a callback, under the call id it had (or one derived once and kept).
  const idsByBody = new Map<string, Set<string>>();
  for (const cb of sink.received) {
    const ids = idsByBody.get(cb.body.toString()) ?? new Set<string>();
    ids.add(String(cb.headers['x-call-id']));
    idsByBody.set(cb.body.toString(), ids);
  }
  t.same([...idsByBody.keys()].sort(), [...callIds.keys()].sort(), `all ${COUNT} called back, none lost`);
  t.same(sink.received.filter((cb) => cb.headers['x-function-status'] !== '200').length, 0, 'every callback says 200');
  const wrongIds = [...callIds].filter(([body, expected]) => {
    const ids = [...(idsByBody.get(body) ?? [])];
    // The gateway's X-Call-Id when it sent one; otherwise one derived id, whichever worker ran it.
    return expected !== undefined ? ids.length !== 1 || ids[0] !== expected : ids.length !== 1;
  });
  t.same(wrongIds, [], 'each job called back under one call id: its own, or one derived and kept across the kill');
  t.comment(`function calls: ${fn.requests.length}; duplicate callbacks: ${duplicates(sink.received.map((r) => String(r.headers['x-call-id'])))}`);
});
