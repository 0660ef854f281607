import { randomUUID } from 'node:crypto';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import {
  ConfirmerClosedError,
  ConfirmTimeoutError,
  createConfirmer,
  JetStreamRejectedError,
  NoStreamError,
  PLAIN_PUB_ACK,
  readAnswer,
  type Confirmer,
} from '../../src/queue/confirmer.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { eventually } from '../helpers/eventually.js';
import { blockUntilUnreadFrom } from '../helpers/blocked-loop.js';
import { readFile } from 'node:fs/promises';

/**
 * SIGSTOPs `pid` and waits until the kernel reports it stopped (State T), so that nothing the test
 * sends next can be answered by a server still finishing its time slice on a loaded box.
 */
async function pause(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  await eventually(async () => /^State:\s+T/m.test(await readFile(`/proc/${pid}/status`, 'utf8')), `nats-server ${pid} to be stopped`, 5_000, 5);
}

const text = new TextEncoder();
const KIB = new Uint8Array(1024).fill(120);

interface Setup {
  nc: NatsConnection;
  jsm: JetStreamManager;
  confirmer: Confirmer;
  pid: number;
  /** The port nats-server listens on for clients. */
  natsPort: number;
  /** A fresh stream capturing `<subject>.>`. */
  stream: () => Promise<{ name: string; subject: string }>;
}

async function setup(t: Test, opts: { timeoutMs?: number; sweepIntervalMs?: number; batchWrites?: boolean } = {}): Promise<Setup> {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const confirmer = createConfirmer(nc, opts);
  t.teardown(() => confirmer.close());
  return {
    nc,
    jsm,
    confirmer,
    pid: nats.pid,
    natsPort: Number(new URL(nats.url).port),
    async stream() {
      const name = `s-${randomUUID()}`;
      const subject = `subj-${randomUUID()}`;
      await jsm.streams.add({ name, subjects: [`${subject}.>`] });
      return { name, subject };
    },
  };
}

t.test('publish resolves with the PubAck: the sequence increments and the message is in the stream', async (t) => {
  const { confirmer, jsm, stream } = await setup(t);
  const s = await stream();
  const first = await confirmer.publish(`${s.subject}.a`, KIB);
  const second = await confirmer.publish(`${s.subject}.b`, text.encode('two'));
  t.same(first, { stream: s.name, seq: 1, duplicate: false });
  t.same(second, { stream: s.name, seq: 2, duplicate: false });
  const stored = await jsm.streams.getMessage(s.name, { seq: 1 });
  t.same(stored?.data, KIB, 'the stored body is the one published');
  t.equal(stored?.subject, `${s.subject}.a`);
  t.equal(confirmer.pending, 0, 'nothing left pending');
});

t.test('headers are sent; a repeated Nats-Msg-Id within the window is a duplicate, stored once', async (t) => {
  const { confirmer, jsm, stream, nc } = await setup(t);
  const s = await stream();
  const h = (await import('@nats-io/nats-core')).headers();
  h.set('X-Test', 'kept');
  const first = await confirmer.publish(`${s.subject}.x`, KIB, { headers: h, msgId: 'id-1' });
  const again = await confirmer.publish(`${s.subject}.x`, KIB, { msgId: 'id-1' });
  t.same(first, { stream: s.name, seq: 1, duplicate: false });
  t.same(again, { stream: s.name, seq: 1, duplicate: true }, 'nats.js reports the first sequence with duplicate: true');
  const stored = await jsm.streams.getMessage(s.name, { seq: 1 });
  t.equal(stored?.header.get('X-Test'), 'kept');
  t.equal(stored?.header.get('Nats-Msg-Id'), 'id-1');
  t.equal((await jsm.streams.info(s.name)).state.messages, 1, 'stored once');
  // The same duplicate through nats.js, for comparison of semantics.
  const viaNatsJs = await jetstream(nc).publish(`${s.subject}.x`, KIB, { msgID: 'id-1' });
  t.equal(viaNatsJs.duplicate, true);
  t.equal(viaNatsJs.seq, 1);
});

t.test("nats-server's answers to a stored and a repeated publish are the plain PubAcks read without JSON.parse", async (t) => {
  const { nc, stream } = await setup(t);
  const s = await stream();
  const h = (await import('@nats-io/nats-core')).headers();
  h.set('Nats-Msg-Id', 'id-plain');
  const answers: string[] = [];
  for (let i = 0; i < 2; i++) answers.push(new TextDecoder().decode((await nc.request(`${s.subject}.p`, KIB, { headers: h, timeout: 5_000 })).data));
  for (const answer of answers) {
    t.match(answer, PLAIN_PUB_ACK, `read by the fast path: ${answer}`);
    t.same(readAnswer(answer), { duplicate: false, ...JSON.parse(answer) }, 'read as JSON.parse reads it');
  }
  t.equal(readAnswer(answers[1]!).duplicate, true, 'the repeat says it is a duplicate');
});

t.test('a subject no stream captures rejects with NoStreamError (503 no responders), not by timing out', async (t) => {
  const { confirmer } = await setup(t);
  const err = await confirmer.publish(`nostream-${randomUUID()}.x`, KIB, { timeoutMs: 60_000 }).catch((e: unknown) => e);
  t.type(err, NoStreamError);
  t.equal((err as NoStreamError).code, 'ASYNCFN_ERR_NO_STREAM');
  t.equal((err as NoStreamError).outcomeUnknown, false, 'surely not stored');
  t.equal((err as NoStreamError).httpStatus, 503);
  t.equal(confirmer.pending, 0);
});

t.test("an expected stream that does not match is JetStream's error answer, with its codes", async (t) => {
  const { confirmer, jsm, stream } = await setup(t);
  const s = await stream();
  const err = await confirmer.publish(`${s.subject}.x`, KIB, { expectStream: 'some-other-stream' }).catch((e: unknown) => e);
  t.type(err, JetStreamRejectedError);
  const rejected = err as JetStreamRejectedError;
  t.equal(rejected.code, 'ASYNCFN_ERR_JETSTREAM_REJECTED');
  t.equal(rejected.status, 400);
  t.equal(rejected.errCode, 10060, 'JSStreamNotMatchErr');
  t.match(rejected.description, /stream/i);
  t.equal(rejected.outcomeUnknown, false);
  t.equal((await jsm.streams.info(s.name)).state.messages, 0, 'nothing stored');
  const ok = await confirmer.publish(`${s.subject}.x`, KIB, { expectStream: s.name });
  t.equal(ok.seq, 1, 'the right expected stream is accepted');
});

t.test('a paused server: the write rejects with ConfirmTimeoutError at its deadline (one sweep timer)', async (t) => {
  const { confirmer, stream, pid } = await setup(t, { timeoutMs: 300, sweepIntervalMs: 50 });
  const s = await stream();
  await confirmer.publish(`${s.subject}.warm`, KIB);
  t.teardown(() => void process.kill(pid, 'SIGCONT'));
  await pause(pid);
  try {
    const started = performance.now();
    const results = await Promise.allSettled([confirmer.publish(`${s.subject}.x`, KIB), confirmer.publish(`${s.subject}.y`, KIB, { timeoutMs: 600 })]);
    const elapsedMs = performance.now() - started;
    for (const r of results) t.equal(r.status, 'rejected');
    const [a, b] = results.map((r) => (r as PromiseRejectedResult).reason as ConfirmTimeoutError);
    t.type(a, ConfirmTimeoutError);
    t.type(b, ConfirmTimeoutError);
    t.equal(a!.code, 'ASYNCFN_ERR_CONFIRM_TIMEOUT');
    t.equal(a!.timeoutMs, 300);
    t.equal(b!.timeoutMs, 600, 'each write keeps its own deadline');
    t.equal(a!.outcomeUnknown, true);
    t.ok(elapsedMs >= 600, `not before the longer deadline (${elapsedMs.toFixed(0)} ms)`);
    // Behaviour bound, generous for a shared box: deadline + sweep interval + scheduling.
    t.ok(elapsedMs < 600 + 3_000, `soon after it (${elapsedMs.toFixed(0)} ms)`);
    t.equal(confirmer.pending, 0);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  // Resumed: the confirmer still works (the late answers to the timed-out writes are ignored).
  const after = await confirmer.publish(`${s.subject}.z`, KIB, { timeoutMs: 10_000 });
  t.equal(after.stream, s.name);
});

t.test('an answer that came in time while the event loop was blocked past the deadline confirms the write', async (t) => {
  const { confirmer, stream, natsPort } = await setup(t, { timeoutMs: 100, sweepIntervalMs: 20 });
  const s = await stream();
  await confirmer.publish(`${s.subject}.warm`, KIB);
  const published = confirmer.publish(`${s.subject}.x`, KIB);
  await new Promise((resolve) => setImmediate(resolve)); // the PUB is on the wire
  // Blocked, as a worker is by a burst of thousands of answers: past the deadline and its sweep,
  // and until the server's answer waits in the socket, unread.
  t.ok(blockUntilUnreadFrom(natsPort, 300, 10_000), 'the PubAck arrived while this thread was blocked');
  const ack = await published;
  t.equal(ack.stream, s.name, 'the PubAck waiting in the socket wins over the sweep that ran first');
  t.equal(ack.seq, 2);
  t.equal(confirmer.pending, 0);
});

t.test('ackAck: the server confirms, the message is no longer pending; a second ackAck sends nothing', async (t) => {
  const { nc, confirmer, jsm, stream } = await setup(t);
  const s = await stream();
  await jsm.consumers.add(s.name, { durable_name: 'c', ack_policy: AckPolicy.Explicit, ack_wait: 60_000_000_000 });
  await confirmer.publish(`${s.subject}.job`, KIB);
  await confirmer.publish(`${s.subject}.job`, KIB);
  const consumer = await jetstream(nc).consumers.get(s.name, 'c');
  const first = await consumer.next({ expires: 5_000 });
  const second = await consumer.next({ expires: 5_000 });
  t.ok(first && second, 'two messages delivered');
  t.equal((await consumer.info()).num_ack_pending, 2, 'both pending before the acks');
  t.equal(await confirmer.ackAck(first!), true, 'confirmed');
  t.equal((await consumer.info()).num_ack_pending, 1, 'one pending after the confirmed ack');
  t.equal(await confirmer.ackAck(first!), false, 'already acked: nothing sent, as nats.js does');
  t.equal(await first!.ackAck(), false, 'nats.js sees it as acked too');
  t.equal(await confirmer.ackAck(second!), true);
  const info = await consumer.info();
  t.equal(info.num_ack_pending, 0, 'nothing pending');
  t.equal(info.delivered.stream_seq, 2);
  t.equal(info.ack_floor.stream_seq, 2, 'the ack floor moved past both');
});

t.test('ackAck with batched writes: marked acked as the ack leaves, so working() still extends the message until then', async (t) => {
  const { nc, confirmer, jsm, stream } = await setup(t, { batchWrites: true });
  const s = await stream();
  await jsm.consumers.add(s.name, { durable_name: 'c', ack_policy: AckPolicy.Explicit, ack_wait: 60_000_000_000 });
  await confirmer.publish(`${s.subject}.job`, KIB);
  const consumer = await jetstream(nc).consumers.get(s.name, 'c');
  const msg = await consumer.next({ expires: 5_000 });
  t.ok(msg, 'delivered');
  // What reaches the server for the consumer's messages, in order: ack subjects are plain NATS subjects.
  const seen: string[] = [];
  const watcher = await connect({ servers: nc.getServer() });
  t.teardown(() => watcher.close());
  watcher.subscribe(`$JS.ACK.${s.name}.c.>`, {
    callback: (_err, m) => {
      seen.push(m.string());
    },
  });
  await watcher.flush();

  const acked = confirmer.ackAck(msg!); // waits for this turn's writes
  const again = confirmer.ackAck(msg!); // asked again before the first left
  msg!.working(); // the ack-extend sweep, meanwhile: still sent
  t.equal(await acked, true, 'confirmed');
  t.equal(await again, false, 'the second sends nothing: the first had left when its turn came');
  msg!.working(); // after the ack: nothing
  await nc.flush();
  await eventually(async () => seen.length >= 2, 'the extension and the ack to reach the watcher', 5_000, 5);
  await watcher.flush();
  t.same(seen, ['+WPI', '+ACK'], 'one extension before the ack, one ack, nothing after');
  t.equal((await consumer.info()).num_ack_pending, 0);
});

t.test('kvPut is a KV put: @nats-io/kv reads it back; previousSeq guards an update', async (t) => {
  const { nc, confirmer } = await setup(t);
  const bucket = `b-${randomUUID().slice(0, 8)}`;
  const kv = await new Kvm(nc).create(bucket);
  const rev1 = await confirmer.kvPut(bucket, 'calls.c1', text.encode('{"state":"running"}'));
  const entry = await kv.get('calls.c1');
  t.equal(entry?.string(), '{"state":"running"}');
  t.equal(entry?.revision, rev1);
  t.equal(entry?.operation, 'PUT');
  const rev2 = await confirmer.kvPut(bucket, 'calls.c1', text.encode('{"state":"succeeded"}'), { previousSeq: rev1 });
  t.ok(rev2 > rev1);
  t.equal((await kv.get('calls.c1'))?.string(), '{"state":"succeeded"}');
  const stale = await confirmer.kvPut(bucket, 'calls.c1', text.encode('late'), { previousSeq: rev1 }).catch((e: unknown) => e);
  t.type(stale, JetStreamRejectedError, 'a stale revision is refused');
  t.equal((stale as JetStreamRejectedError).errCode, 10071, 'JSStreamWrongLastSequenceErr');
  await t.rejects(confirmer.kvPut(bucket, 'bad key', KIB), TypeError, 'keys are validated as @nats-io/kv does');
  t.equal((await kv.get('calls.c1'))?.string(), '{"state":"succeeded"}');
});

t.test('1,000 concurrent publishes are all confirmed, with sequences in the order they were issued', async (t) => {
  const { confirmer, jsm, stream } = await setup(t);
  const s = await stream();
  const acks = await Promise.all(Array.from({ length: 1_000 }, (_, i) => confirmer.publish(`${s.subject}.${i}`, KIB)));
  t.same(
    acks.map((a) => a.seq),
    Array.from({ length: 1_000 }, (_, i) => i + 1),
    'seq i+1 for the i-th publish',
  );
  t.ok(acks.every((a) => a.stream === s.name && !a.duplicate));
  t.equal((await jsm.streams.info(s.name)).state.messages, 1_000);
  t.equal(confirmer.pending, 0);
});

t.test('close rejects every pending write with ConfirmerClosedError, and later writes at once', async (t) => {
  const { confirmer, stream } = await setup(t);
  const s = await stream();
  // Writes are flushed in a microtask: closing in the same synchronous run beats any answer.
  const inFlight = Array.from({ length: 10 }, (_, i) => confirmer.publish(`${s.subject}.${i}`, KIB));
  t.equal(confirmer.pending, 10);
  confirmer.close();
  const results = await Promise.allSettled(inFlight);
  t.ok(
    results.every((r) => r.status === 'rejected' && r.reason instanceof ConfirmerClosedError),
    'all rejected',
  );
  t.equal(((results[0] as PromiseRejectedResult).reason as ConfirmerClosedError).code, 'ASYNCFN_ERR_CONFIRMER_CLOSED');
  t.equal(confirmer.pending, 0);
  await t.rejects(confirmer.publish(`${s.subject}.late`, KIB), ConfirmerClosedError);
});

t.test('the connection closing rejects pending writes', async (t) => {
  const { nc, confirmer, stream, pid } = await setup(t, { timeoutMs: 60_000 });
  const s = await stream();
  t.teardown(() => void process.kill(pid, 'SIGCONT'));
  await pause(pid);
  const write = confirmer.publish(`${s.subject}.x`, KIB).catch((e: unknown) => e);
  try {
    // A paused server never answers; closing the connection must not leave the write hanging.
    await nc.close();
    t.type(await write, ConfirmerClosedError);
    t.equal(confirmer.pending, 0);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
});
