import { hostname } from 'node:os';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { RECORDS_BUCKET } from '../../src/queue/topology.js';
import { recordReaches } from '../helpers/records.js';
import { configFor, spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { eventually } from '../helpers/eventually.js';

/*
 * A redelivery that reaches a second worker while the first still runs the invocation: JetStream
 * gave up on the first worker's ack deadline (here: the process is stopped with SIGSTOP for a few
 * ack_waits, as a starved container or a long pause would stop it). The second worker asks the
 * worker its `running` record names, and leaves the invocation to it; asking a worker that died
 * gets "no responders" at once, and the redelivery runs.
 */

/** The records bucket and the queue's consumer, read from the test's own connection. */
async function observe(t: Test, natsUrl: string) {
  const nc = await connect({ servers: natsUrl });
  t.teardown(() => nc.close());
  const kv = await new Kvm(nc).open(RECORDS_BUCKET);
  const jsm = await jetstreamManager(nc);
  const stream = configFor(natsUrl).queue.stream;
  const deliveries = async (): Promise<number> => {
    let n = 0;
    for await (const c of jsm.consumers.list(stream)) n += c.delivered.consumer_seq;
    return n;
  };
  const unsettled = async (): Promise<number> => {
    let n = 0;
    for await (const c of jsm.consumers.list(stream)) n += c.num_ack_pending + c.num_pending;
    return n;
  };
  return { kv, deliveries, unsettled };
}

t.test('a worker stopped past ack_wait: the second worker that gets the redelivery leaves it to the first, and the function runs once', async (t) => {
  const release = deferred<void>();
  const { nats, fn, sink, gateway, workerEnv } = await startProcessStack(t, async (_req, res) => {
    await release.promise;
    if (!res.destroyed) res.writeHead(200).end('done');
  });
  // One slot each: the stopped worker keeps no pull open that the redelivery could go to.
  const env = { ...workerEnv, max_inflight: '1', ack_wait: '1s' };
  const { kv, deliveries, unsettled } = await observe(t, nats.url);

  const first = await spawnAsyncfn(t, 'worker', env);
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  await fn.waitForConcurrent(1);
  await recordReaches(kv, callId!, 'running');
  const holder = `${hostname()}:${first.child.pid}`;
  t.equal((await kv.get(callId!))?.json<{ worker?: string }>().worker, holder, 'the running record names the worker running it');

  const second = await spawnAsyncfn(t, 'worker', env);
  first.child.kill('SIGSTOP');
  t.teardown(() => void first.child.kill('SIGCONT'));
  // ack_wait passes with no extension: JetStream delivers it again, to the only worker pulling.
  const left = await second.waitForLog((l) => l.callId === callId && l.settlement === 'heldElsewhere', 'the redelivery left to the first worker');
  t.equal(left.heldBy, holder, 'the worker its record names was asked');
  t.ok((await deliveries()) >= 2, 'delivered again while the first worker was stopped');
  t.equal(fn.requests.length, 1, 'not called again by the second worker');

  first.child.kill('SIGCONT');
  release.resolve();
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '200');
  await recordReaches(kv, callId!, 'succeeded');
  await eventually(async () => (await unsettled()) === 0, 'the message settled');
  t.equal(fn.requests.length, 1, 'the function ran once');
  t.equal(sink.received.length, 1, 'one callback');
  // A delivery that reaches it once the first worker has written the final record is acked as stale.
  t.notOk(
    second.logs.some((l) => l.callId === callId && l.settlement !== undefined && l.settlement !== 'heldElsewhere' && l.settlement !== 'stale'),
    'the second worker ran no attempt of it',
  );
});

t.test('a worker killed mid-call: the redelivery asks the worker its running record names, nobody answers, and it runs', async (t) => {
  const killed = deferred<void>();
  const { nats, fn, sink, gateway, workerEnv } = await startProcessStack(t, async (_req, res) => {
    await killed.promise;
    if (!res.destroyed) res.writeHead(200).end('done');
  });
  const env = { ...workerEnv, max_inflight: '1', ack_wait: '1s' };
  const { kv } = await observe(t, nats.url);

  const first = await spawnAsyncfn(t, 'worker', env);
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  await fn.waitForConcurrent(1);
  await recordReaches(kv, callId!, 'running');
  await first.kill9();
  killed.resolve();

  const second = await spawnAsyncfn(t, 'worker', env);
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '200');
  t.equal(callback.headers['x-retry'], '1', 'the second attempt: the first was cut off with its worker');
  t.equal(fn.requests.length, 2, 'run again once: its worker was gone');
  t.notOk(
    second.logs.some((l) => l.settlement === 'heldElsewhere'),
    'not left to a worker that is gone',
  );
});
