import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import t from 'tap';
import { THROTTLES_BUCKET } from '../../src/queue/topology.js';
import { startStack, startTestWorker } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { eventually } from '../helpers/eventually.js';
import { slowHandler, type Handler } from '../helpers/http-servers.js';

t.test('a job running 5x ack_wait is invoked exactly once: the ack deadline is extended while it runs', async (t) => {
  const { nats, fn, sink, config, gateway } = await startStack(t, {
    handler: slowHandler(5_000),
    // Two slots: a redelivery during the job would be pulled and run beside the first call.
    config: { worker: { ackWaitMs: 1_000, maxInflight: 2 } },
  });

  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '200');
  t.equal(fn.requests.length, 1, 'the function was called once');
  t.equal(sink.received.length, 1, 'one callback');

  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const info = await (await jetstreamManager(nc)).consumers.info(config.queue.stream, config.queue.durable);
  t.equal(info.num_ack_pending, 0, 'nothing waits for an ack');
  t.equal(info.num_pending, 0, 'nothing waits for delivery');
  t.equal(info.num_redelivered, 0, 'no message was redelivered');
});

t.test('max_inflight is reached under load and never exceeded', async (t) => {
  const { fn, sink, config, resolver, gateway } = await startStack(t, {
    handler: slowHandler(150),
    config: { worker: { maxInflight: 5 } },
    worker: false,
  });
  // Queue everything first so the worker meets a full backlog.
  await enqueueMany(gateway.url, 'work', 40, sink.url);
  await startTestWorker(t, config, resolver);
  await sink.waitFor(40);
  t.equal(fn.maxConcurrent, 5, 'the function saw exactly max_inflight concurrent calls at most');
  t.equal(fn.requests.length, 40);
});

t.test('a worker starved of CPU past ack_wait: the redelivery of a running invocation is no attempt; it still gets every attempt', async (t) => {
  const firstCall = deferred<void>();
  const release = deferred<void>();
  let calls = 0;
  // 500 every time (retried, then dead-lettered); the first call is held until the test says.
  const handler: Handler = async (_req, res) => {
    calls += 1;
    if (calls === 1) {
      firstCall.resolve();
      await release.promise;
    }
    res.writeHead(500).end('broken');
  };
  const { nats, fn, sink, gateway, config } = await startStack(t, {
    handler,
    config: { worker: { ackWaitMs: 1_000, maxInflight: 2 }, retry: { maxAttempts: 3, initialWaitMs: 50, maxWaitMs: 100 } },
  });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  await firstCall.promise;

  // The process does nothing for 2.5 × ack_wait (a long GC pause, a starved container): no ack
  // extension goes out, and JetStream delivers the message again to the worker's open pull.
  const until = performance.now() + 2_500;
  while (performance.now() < until) {
    // busy: the event loop is blocked on purpose
  }
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  // Every consumer of the queue's stream (the queue's own, and a lane's per function): one message, delivered twice.
  const deliveries = async (): Promise<number> => {
    let n = 0;
    for await (const c of jsm.consumers.list(config.queue.stream)) n += c.delivered.consumer_seq;
    return n;
  };
  await eventually(async () => (await deliveries()) >= 2, 'JetStream to deliver the running invocation again');
  release.resolve();

  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '500', 'dead-lettered after its last attempt');
  t.equal(fn.requests.length, 3, 'the function ran once per attempt, max_attempts times: the redelivery spent none');
  t.equal(callback.headers['x-retry'], '2', 'the callback counts the 2 retries of 3 attempts');
  const entry = await (await new Kvm(nc).open(THROTTLES_BUCKET)).get(callId!);
  t.equal(entry?.json<{ attempts: number }>().attempts, 3, 'the attempt ledger recorded 3 attempts');
});
