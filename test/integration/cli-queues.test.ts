import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { AckPolicy, jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { QUEUES_TABLE_HEADER } from '../../src/cli/queues-format.js';
import { runQueuesCommand } from '../../src/cli/queues.js';
import { SCAN_LIMITS } from '../../src/status/queue-stats.js';
import { testConfig } from '../../src/config/index.js';
import { encodeDeadLetter, publishDeadLetter } from '../../src/queue/dead-letter.js';
import { encodeEnvelope } from '../../src/queue/envelope.js';
import {
  CALLBACK_DURABLE,
  CALLBACK_STREAM,
  DELAYED_STREAM,
  delayedSubject,
  ensureCallbackStream,
  ensureConsumer,
  ensureDeadLetterStream,
  ensureDelayedStream,
  ensureStream,
  openKvBucket,
  queueSpecFor,
  RECORDS_BUCKET,
} from '../../src/queue/topology.js';
import type { InvocationRecord, InvocationState } from '../../src/status/records.js';
import { recordReaches } from '../helpers/records.js';
import { REPO_ROOT, startStack } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { deferred } from '../helpers/deferred.js';
import { testInvocation } from '../helpers/invocations.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { asyncfnNodeArgs } from '../helpers/repo-root.js';

const config = testConfig();
const DEFAULT_QUEUE = { stream: config.queue.stream, durable: config.queue.durable };
const silent = pino({ enabled: false });
const BUCKET = { replicas: 1, storage: 'memory', ttlMs: 3_600_000 } as const;
const MINUTE = 60_000;

interface Env {
  url: string;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

async function setup(t: Test): Promise<Env> {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  return { url: nats.url, nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
}

/** Runs `asyncfn queues <args>` against `natsUrl` with the clock at `nowMs`. */
async function runQueues(natsUrl: string, args: string[], nowMs = Date.now()): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runQueuesCommand(args, { natsUrl, defaultQueue: DEFAULT_QUEUE, out: (l) => out.push(...l.split('\n')), err: (l) => err.push(l), now: () => nowMs });
  return { code, out, err };
}

/** A queue provisioned as the gateway and worker do it (work-queue stream, durable pull consumer), in memory. */
async function provisionQueue(jsm: JetStreamManager, name?: string): Promise<void> {
  const spec = { ...queueSpecFor(config, name), storage: 'memory' as const };
  await ensureStream(jsm, spec, silent);
  await ensureConsumer(jsm, spec, 1, silent);
}

async function publishInvocation(js: JetStreamClient, subject: string, callId: string): Promise<number> {
  const { headers, data } = encodeEnvelope(testInvocation({ callId, enqueuedAtMs: Date.now() }));
  return (await js.publish(subject, data, { headers })).seq;
}

async function fetchN(js: JetStreamClient, stream: string, durable: string, n: number): Promise<JsMsg[]> {
  const consumer = await js.consumers.get(stream, durable);
  const got: JsMsg[] = [];
  while (got.length < n) {
    for await (const m of await consumer.fetch({ max_messages: n - got.length, expires: 5_000 })) got.push(m);
  }
  return got;
}

function rec(callId: string, state: InvocationState, attempts: number): InvocationRecord {
  return { callId, function: 'fn', namespace: 'openfaas-fn', queue: 'faas-request', state, attempts, enqueuedAtMs: Date.now() };
}

/** The table's rows as cells (columns are separated by two or more spaces; no cell has two). */
function cells(lines: string[]): string[][] {
  return lines.map((l) => l.split(/ {2,}/));
}

t.test('every asyncfn stream with pending, in-flight, waiting-retry, redelivered counts and the oldest message', async (t) => {
  const env = await setup(t);
  const { js, jsm } = env;
  await provisionQueue(jsm);
  await provisionQueue(jsm, 'slow');
  // Not asyncfn's: a stream whose consumer is not "<name>-workers".
  await jsm.streams.add({ name: 'orders', subjects: ['orders.>'], storage: StorageType.Memory });
  await jsm.consumers.add('orders', { durable_name: 'archiver', ack_policy: AckPolicy.Explicit });
  const kv = await openKvBucket(env.nc, RECORDS_BUCKET, BUCKET);

  // Default queue: 6 invocations; 1 acked, 1 waiting for its retry, 2 running (one on its 2nd attempt), 2 never delivered.
  const ids = Array.from({ length: 6 }, () => randomUUID());
  for (const id of ids) {
    await publishInvocation(js, 'faas-request', id);
    await kv.put(id, JSON.stringify(rec(id, 'queued', 0)));
  }
  const [acked, retry, _running, released] = await fetchN(js, 'faas-request', 'faas-workers', 4);
  await acked!.ackAck();
  retry!.nak(10 * MINUTE);
  await kv.put(ids[1]!, JSON.stringify(rec(ids[1]!, 'retrying', 1)));
  await kv.put(ids[2]!, JSON.stringify(rec(ids[2]!, 'running', 1)));
  released!.nak();
  await env.nc.flush();
  const [again] = await fetchN(js, 'faas-request', 'faas-workers', 1);
  t.equal(again!.seq, released!.seq, 'the nak without delay is redelivered first');
  t.equal(again!.info.deliveryCount, 2);
  await kv.put(ids[3]!, JSON.stringify(rec(ids[3]!, 'running', 2)));
  // The oldest message not done is the waiting retry: the acked one is gone from the work queue.
  const oldestAtMs = (await jsm.streams.getMessage('faas-request', { seq: retry!.seq }))!.time.getTime();

  // Named queue "slow": one invocation, not delivered yet.
  await publishInvocation(js, 'slow', randomUUID());

  // An invocation waiting for its X-Delay-Seconds, in the delayed stream.
  await ensureDelayedStream(jsm, { replicas: 1, storage: 'memory', duplicateWindowMs: MINUTE }, silent);
  await js.publish(delayedSubject('faas-request'), 'later');

  // Callbacks being retried: 2 stored, 1 delivered and waiting out its back-off.
  await ensureCallbackStream(jsm, { replicas: 1, storage: 'memory', ackWaitMs: MINUTE });
  for (let i = 0; i < 2; i++) await js.publish('asyncfn.callbacks.faas-request', `result-${i}`);
  const [callback] = await fetchN(js, CALLBACK_STREAM, CALLBACK_DURABLE, 1);
  callback!.nak(10 * MINUTE);

  // Dead letters: 2.
  await ensureDeadLetterStream(jsm, { replicas: 1, storage: 'memory' });
  for (let i = 0; i < 2; i++) {
    await publishDeadLetter(
      js,
      encodeDeadLetter(encodeEnvelope(testInvocation({ callId: randomUUID() })), { reason: 'retriesExhausted', queue: 'faas-request', attempts: 3, atMs: Date.now() }),
    );
  }
  await env.nc.flush();

  const now = oldestAtMs + 2 * MINUTE + 5_000;
  const json = await runQueues(env.url, ['--json'], now);
  t.equal(json.code, 0, json.err.join('\n'));
  const report = JSON.parse(json.out.join('\n')) as { at: string; queues: Array<Record<string, unknown>> };
  t.equal(report.at, new Date(now).toISOString());
  t.same(
    report.queues.map((q) => q.name),
    ['faas-request', 'slow', DELAYED_STREAM, CALLBACK_STREAM, 'asyncfn-dead-letters'],
    'asyncfn streams only, queues first',
  );
  t.same(report.queues[0], {
    name: 'faas-request',
    kind: 'queue',
    stream: 'faas-request',
    consumer: 'faas-workers',
    messages: 5,
    pending: 2,
    inFlight: 2,
    waitingRetries: 1,
    ackPending: 3,
    redelivered: 1,
    delivered: 5,
    waitingPulls: 0,
    consumers: 1,
    oldestAt: new Date(oldestAtMs).toISOString(),
    oldestAgeMs: 2 * MINUTE + 5_000,
    lanes: [],
  });
  t.match(report.queues[1], {
    name: 'slow',
    kind: 'queue',
    consumer: 'slow-workers',
    messages: 1,
    pending: 1,
    inFlight: 0,
    waitingRetries: 0,
    ackPending: 0,
    redelivered: 0,
    consumers: 1,
  });
  t.match(report.queues[2], { name: DELAYED_STREAM, kind: 'delayed', consumer: null, messages: 1, pending: 1, inFlight: null, ackPending: null });
  t.match(report.queues[3], {
    name: CALLBACK_STREAM,
    kind: 'callbacks',
    consumer: CALLBACK_DURABLE,
    messages: 2,
    pending: 1,
    ackPending: 1,
    inFlight: null,
    waitingRetries: null,
    redelivered: 0,
    consumers: 1,
  });
  t.match(report.queues[4], {
    name: 'asyncfn-dead-letters',
    kind: 'deadLetters',
    consumer: null,
    messages: 2,
    pending: 2,
    ackPending: null,
    inFlight: null,
    waitingRetries: null,
    redelivered: null,
    waitingPulls: null,
    consumers: 0,
  });
  for (const q of report.queues.slice(1)) t.type(q.oldestAgeMs, 'number', `${String(q.name)} has an oldest message`);

  const table = await runQueues(env.url, [], now);
  t.equal(table.code, 0);
  const [header, ...rows] = cells(table.out);
  t.same(header, [...QUEUES_TABLE_HEADER]);
  t.same(rows[0], ['faas-request', 'queue', '2', '2', '1', '3', '1', '1', '2m5s']);
  t.match(rows[1], ['slow', 'queue', '1', '0', '0', '0', '0', '1', /^2m[45]s$/]);
  t.match(rows[2], [DELAYED_STREAM, 'delayed', '1', '-', '-', '-', '-', '0', /^2m[45]s$/]);
  t.match(rows[3], [CALLBACK_STREAM, 'callbacks', '1', '-', '-', '1', '0', '1', /^2m[45]s$/]);
  t.match(rows[4], ['asyncfn-dead-letters', 'dead-letters', '2', '-', '-', '-', '-', '0', /^2m[45]s$/]);
  t.equal(rows.length, 5);
  // Columns line up: on every line, each column starts where its header does.
  const starts = QUEUES_TABLE_HEADER.map((h) => table.out[0]!.indexOf(h));
  for (const line of table.out) {
    t.equal(line.trimEnd(), line, 'no trailing spaces');
    const lineStarts = [...line.matchAll(/(?:^|(?<= {2}))\S/g)].map((m) => m.index);
    t.same(lineStarts, starts, `aligned: "${line}"`);
  }
});

t.test('with a real worker: a retry waiting out its back-off is not in flight, a running call is, later ones are pending', async (t) => {
  const release = deferred<void>();
  t.teardown(() => release.resolve());
  const { nats, fn, sink, gateway } = await startStack(t, {
    handler: async (req, res) => {
      const body = req.body.toString();
      if (body === 'hold') await release.promise;
      res.writeHead(body === 'fail' ? 502 : 200);
      res.end(body);
    },
    config: { retry: { maxAttempts: 5, initialWaitMs: 10 * MINUTE, maxWaitMs: 10 * MINUTE }, worker: { maxInflight: 1 } },
  });
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await openKvBucket(nc, RECORDS_BUCKET, BUCKET);

  const [done] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'ok');
  await sink.waitForCallId(done!);
  const [failing] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'fail');
  await recordReaches(kv, failing!, 'retrying');
  await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'hold');
  await fn.waitForConcurrent(1);
  // The only slot is busy: these stay in the stream, never delivered.
  await enqueueMany(gateway.url, 'work', 2, sink.url, () => 'ok');

  const { code, out, err } = await runQueues(nats.url, ['--json']);
  t.equal(code, 0, err.join('\n'));
  const [queue] = (JSON.parse(out.join('\n')) as { queues: Array<Record<string, unknown>> }).queues;
  // The queue's own consumer and the function's lane (fair scheduling): the queue's counts include the lane's.
  t.match(queue, { name: 'faas-request', kind: 'queue', messages: 4, pending: 2, ackPending: 2, inFlight: 1, waitingRetries: 1, redelivered: 0, consumers: 2 });
  t.match(queue!.lanes, [
    { lane: 'work.openfaas-fn', consumer: 'faas-workers_f_work_openfaas-fn', pending: 2, ackPending: 2, inFlight: 1, waitingRetries: 1, limit: null },
  ]);
  // The table: the lane under its queue, "lane" alone (no limit of its own), no trailing spaces.
  const table = await runQueues(nats.url, []);
  t.equal(table.code, 0, table.err.join('\n'));
  const laneLine = table.out.find((line) => line.startsWith('  work.openfaas-fn'));
  t.match(laneLine, /^ {2}work\.openfaas-fn +lane +2 +1 +1 +2$/);
  t.equal(fn.requests.filter((r) => r.body.toString() === 'fail').length, 1, 'the retry has not run again');
});

t.test('"?" when waiting retries cannot be told: no records bucket, or more unacked messages than the scan limit', async (t) => {
  const env = await setup(t);
  await provisionQueue(env.jsm);
  await publishInvocation(env.js, 'faas-request', randomUUID());
  await fetchN(env.js, 'faas-request', 'faas-workers', 1);

  const noRecords = await runQueues(env.url, []);
  t.equal(noRecords.code, 0);
  t.same(cells(noRecords.out)[1]!.slice(0, 6), ['faas-request', 'queue', '0', '?', '?', '1']);

  await openKvBucket(env.nc, RECORDS_BUCKET, BUCKET);
  const acks = [];
  for (let i = 0; i < SCAN_LIMITS.messages; i++) acks.push(env.js.publish('faas-request', 'x'));
  await Promise.all(acks);
  await fetchN(env.js, 'faas-request', 'faas-workers', SCAN_LIMITS.messages);
  const tooMany = await runQueues(env.url, ['--json']);
  t.match(JSON.parse(tooMany.out.join('\n')), { queues: [{ name: 'faas-request', ackPending: SCAN_LIMITS.messages + 1, inFlight: null, waitingRetries: null }] });
});

t.test('a server without asyncfn streams; a default stream without its consumer yet', async (t) => {
  const env = await setup(t);
  const empty = await runQueues(env.url, []);
  t.same(empty, { code: 0, out: ['no asyncfn queues on this server yet (a gateway or worker creates them)'], err: [] });
  t.same(JSON.parse((await runQueues(env.url, ['--json'], Date.UTC(2025, 0, 1))).out.join('\n')), { at: '2025-01-01T00:00:00.000Z', queues: [] });

  // The gateway created the stream, no worker has started: nothing delivered.
  await ensureStream(env.jsm, { ...queueSpecFor(config), storage: 'memory' }, silent);
  await publishInvocation(env.js, 'faas-request', randomUUID());
  const { out } = await runQueues(env.url, ['--json']);
  t.match(JSON.parse(out.join('\n')), {
    queues: [{ name: 'faas-request', consumer: null, messages: 1, pending: 1, inFlight: 0, waitingRetries: 0, ackPending: 0, consumers: 0 }],
  });
});

t.test('bad arguments exit 2, an unreachable server 1; --help explains every column', async (t) => {
  for (const args of [['--bogus'], ['faas-request'], ['--json=1']]) {
    const { code, err } = await runQueues('nats://127.0.0.1:1', args);
    t.equal(code, 2, args.join(' '));
    t.match(err[0], /^asyncfn queues: .*\(asyncfn queues --help\)$/);
  }
  const down = await runQueues('nats://127.0.0.1:1', []);
  t.equal(down.code, 1);
  t.match(down.err[0], /^asyncfn queues: .*127\.0\.0\.1:1/);
  const help = await runQueues('', ['--help']);
  t.equal(help.code, 0);
  const text = help.out.join('\n');
  for (const column of QUEUES_TABLE_HEADER.slice(2)) t.match(text, new RegExp(`\\n {2}${column} +\\S`), `${column} explained`);
});

t.test('`asyncfn queues` as a process prints the table', async (t) => {
  const env = await setup(t);
  await provisionQueue(env.jsm);
  await publishInvocation(env.js, 'faas-request', randomUUID());
  const { stdout } = await promisify(execFile)(process.execPath, [...asyncfnNodeArgs(), 'queues'], {
    cwd: REPO_ROOT,
    env: { ...process.env, NATS_URL: env.url },
  });
  const [header, row] = cells(stdout.trimEnd().split('\n'));
  t.same(header, [...QUEUES_TABLE_HEADER]);
  t.match(row, ['faas-request', 'queue', '1', '0', '0', '0', '0', '1', /^\d+ms$|^\d+(\.\d+)?s$/]);
});
