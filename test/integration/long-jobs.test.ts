import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t from 'tap';
import { startStack, startTestWorker } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { slowHandler } from '../helpers/http-servers.js';

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
