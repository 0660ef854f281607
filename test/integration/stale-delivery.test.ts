import { randomUUID } from 'node:crypto';
import { Kvm } from '@nats-io/kv';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { Invocation } from '../../actors/invocation.types.js';
import { decodeEnvelope, encodeEnvelope } from '../../src/queue/envelope.js';
import { provisionWorker, queueSpecFor, RECORDS_BUCKET } from '../../src/queue/topology.js';
import type { InvocationRecord } from '../../src/status/records.js';
import { invocationRecordOf } from '../../src/worker/records.js';
import { startStack, startTestWorker } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { testInvocation } from '../helpers/invocations.js';

/*
 * JetStream may deliver an invocation again after the attempt that settled it wrote its final
 * record: that attempt's ack was lost, or the server sent the delivery before it read the ack
 * (a worker busy past ack_wait, which reads it only once that attempt is done). Such a delivery is
 * acked and not run: the function runs once per attempt. Here a first "worker" (the test) takes
 * the delivery, writes the final record as the worker does, and loses the ack (a nak in its
 * place); then a real worker gets the redelivery.
 */

/** One invocation taken by the test as a worker whose ack is lost after `record` wrote what it wrote. */
async function loseTheAck(t: Test, record: (invocation: Invocation, queue: string) => InvocationRecord | undefined) {
  const stack = await startStack(t, { worker: false });
  const nc = await connect({ servers: stack.nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  // The first worker provisions its queue's stream and consumer, as every worker does before it pulls.
  await provisionWorker(nc, jsm, stack.config, pino({ enabled: false }));
  const { stream, durable, subject } = queueSpecFor(stack.config);
  const callId = randomUUID();
  const { headers, data } = encodeEnvelope(testInvocation({ callId, functionName: 'work', enqueuedAtMs: Date.now(), callbackUrl: stack.sink.url }));
  await js.publish(subject, data, { headers });
  const first = await (await js.consumers.get(stream, durable)).next({ expires: 10_000 });
  if (first === null) throw new Error('the invocation was not delivered');
  t.equal(first.info.deliveryCount, 1, 'the first delivery');
  const invocation = decodeEnvelope(first.headers, first.data);
  t.equal(invocation.callId, callId);
  const kv = await new Kvm(nc).open(RECORDS_BUCKET);
  const written = record(invocation, stream);
  if (written !== undefined) await kv.put(invocation.callId, JSON.stringify(written));
  // The ack lost: JetStream delivers the message again (at once, instead of after ack_wait).
  first.nak();
  await startTestWorker(t, stack.config, stack.resolver);
  const consumerInfo = () => jsm.consumers.info(stream, durable);
  const recordNow = async () => (await kv.get(invocation.callId))?.json<InvocationRecord>();
  return { ...stack, invocation, consumerInfo, recordNow };
}

/** The final record the first attempt wrote: succeeded, function status 200, one attempt. */
function succeeded(queue: string, invocation: Invocation, enqueuedAtMs = invocation.enqueuedAtMs): InvocationRecord {
  const outcome = { status: 200, body: new Uint8Array(0), startedAtMs: Date.now(), durationMs: 3 };
  return invocationRecordOf(
    queue,
    { invocation: { ...invocation, enqueuedAtMs }, state: 'succeeded', attempt: 1, outcome, startedAtMs: outcome.startedAtMs },
    Date.now(),
  );
}

t.test('a redelivery of an invocation whose final record is written is acked, and neither runs nor calls back again', async (t) => {
  const { fn, sink, invocation, consumerInfo, recordNow } = await loseTheAck(t, (invocation, queue) => succeeded(queue, invocation));
  const before = await recordNow();
  await eventually(async () => {
    const info = await consumerInfo();
    return info.delivered.consumer_seq === 2 && info.num_ack_pending === 0;
  }, 'the second delivery, acked');
  t.equal(fn.requests.length, 0, 'the function was not called again');
  t.same(await recordNow(), before, 'the final record is unchanged');
  const info = await consumerInfo();
  t.equal(info.num_pending + info.num_ack_pending, 0, 'nothing left in the consumer');
  t.same(
    sink.received.filter((callback) => callback.headers['x-call-id'] === invocation.callId),
    [],
    'no callback: the first attempt made it',
  );
});

t.test('a redelivery whose record is not final (the ack lost before anything was recorded) runs', async (t) => {
  // No record: the first worker stopped before it wrote anything.
  const { fn, sink, invocation } = await loseTheAck(t, () => undefined);
  const callback = await sink.waitForCallId(invocation.callId);
  t.equal(callback.headers['x-function-status'], '200');
  t.equal(fn.requests.length, 1, 'the function ran once');
});

t.test('a final record of another enqueue time (a dead letter replayed, a reused call id) is not this invocation’s: it runs', async (t) => {
  const { fn, sink, invocation, recordNow } = await loseTheAck(t, (invocation, queue) => succeeded(queue, invocation, invocation.enqueuedAtMs - 60_000));
  await sink.waitForCallId(invocation.callId);
  t.equal(fn.requests.length, 1, 'the function ran once');
  await eventually(async () => (await recordNow())?.enqueuedAtMs === invocation.enqueuedAtMs, 'the record of this invocation written');
});
