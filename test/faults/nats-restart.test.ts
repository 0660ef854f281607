import t from 'tap';
import { request } from 'undici';
import { startStack, startTestWorker } from '../helpers/asyncfn.js';
import { duplicates, enqueueMany } from '../helpers/enqueue.js';
import { eventually } from '../helpers/eventually.js';
import { slowHandler } from '../helpers/http-servers.js';

t.test('nats-server restarted (same store) between enqueue and processing: nothing is lost', async (t) => {
  const { nats, fn, sink, config, resolver, gateway } = await startStack(t, { worker: false });
  t.equal(fn.requests.length, 0);

  const callIds = await enqueueMany(gateway.url, 'work', 30, sink.url);
  await nats.restart();
  await startTestWorker(t, config, resolver);
  await sink.waitFor(30);
  t.same(sink.received.map((r) => String(r.headers['x-call-id'])).sort(), [...callIds].sort(), 'all 30 completed after the restart');
});

t.test('nats-server restarted while a worker is busy: the worker reconnects and every invocation completes', async (t) => {
  const { nats, fn, sink, gateway } = await startStack(t, {
    handler: slowHandler(200),
    config: { worker: { maxInflight: 3, ackWaitMs: 2_000 } },
  });

  const callIds = await enqueueMany(gateway.url, 'work', 30, sink.url);
  await fn.waitForConcurrent(3);
  await nats.restart();
  await sink.waitFor(30);
  await eventually(async () => new Set(sink.received.map((r) => r.headers['x-call-id'])).size === 30, 'all 30 call ids');
  const received = sink.received.map((r) => String(r.headers['x-call-id']));
  t.same([...new Set(received)].sort(), [...callIds].sort(), 'every accepted invocation got its callback');
  t.comment(`duplicate callbacks (acks lost in the restart are redelivered): ${duplicates(received)}`);
});

t.test('while NATS is down the gateway answers 503 with Retry-After, never 202, and recovers by itself', async (t) => {
  const { nats, fn, sink, gateway } = await startStack(t);

  await nats.stop();
  await eventually(async () => (await request(`${gateway.url}/healthz`)).statusCode === 503, '/healthz to report 503');
  for (let i = 0; i < 20; i++) {
    const res = await request(`${gateway.url}/async-function/work`, { method: 'POST', body: `down-${i}` });
    t.equal(res.statusCode, 503, `request ${i} refused while NATS is down`);
    t.equal(res.headers['retry-after'], '1');
    await res.body.dump();
  }

  await nats.restart();
  await eventually(async () => (await request(`${gateway.url}/healthz`)).statusCode === 200, '/healthz to recover');
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'after');
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.body.toString(), 'after', 'accepted and processed once NATS is back');
  t.equal(fn.requests.length, 1, 'none of the refused requests ran');
});
