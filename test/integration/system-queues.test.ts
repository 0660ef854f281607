import { dirname } from 'node:path';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { runQueuesCommand } from '../../src/cli/queues.js';
import type { Config } from '../../src/config/index.js';
import { openKvBucket, queueSpecFor, RECORDS_BUCKET } from '../../src/queue/topology.js';
import { recordReaches } from '../helpers/records.js';
import type { QueuesJson } from '../../src/status/queue-stats-json.js';
import { startStack } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { eventually } from '../helpers/eventually.js';
import { writeSecretFiles } from '../helpers/nats-server.js';

const MINUTE = 60_000;
const USER = 'admin';
const PASSWORD = 'queues-secret';
const ADMIN = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

/** A secrets directory holding the gateway's basic_auth credentials. */
async function basicAuthSecrets(t: Test): Promise<string> {
  const paths = await writeSecretFiles(t, { 'basic-auth-user': `${USER}\n`, 'basic-auth-password': `${PASSWORD}\n` });
  return dirname(paths['basic-auth-user']);
}

async function getQueues(gatewayUrl: string, authorization?: string): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const res = await request(`${gatewayUrl}/system/queues`, { headers: authorization ? { authorization } : {} });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** `asyncfn queues --json` against `natsUrl`, with the queue names of `config` as main.ts passes them. */
async function cliQueuesJson(natsUrl: string, config: Config): Promise<QueuesJson> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runQueuesCommand(['--json'], {
    natsUrl,
    defaultQueue: queueSpecFor(config),
    durableFor: (q) => queueSpecFor(config, q).durable,
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  });
  if (code !== 0) throw new Error(`asyncfn queues --json exited ${code}: ${err.join('\n')}`);
  return JSON.parse(out.join('\n')) as QueuesJson;
}

/**
 * The document without what depends on the moment of asking: `at`, the ages, and the pull
 * requests waiting (the callback worker renews its own on a schedule of its own).
 */
function counts(doc: QueuesJson): unknown {
  return doc.queues.map(({ oldestAgeMs: _age, waitingPulls: _pulls, ...q }) => q);
}

t.test('GET /system/queues: the counts of `asyncfn queues --json` for a known workload, behind basic_auth', async (t) => {
  const release = deferred<void>();
  t.teardown(() => release.resolve());
  const secretMountPath = await basicAuthSecrets(t);
  const { nats, fn, sink, gateway, config } = await startStack(t, {
    handler: async (req, res) => {
      const body = req.body.toString();
      if (body === 'hold') await release.promise;
      res.writeHead(body === 'fail' ? 502 : 200);
      res.end(body);
    },
    config: {
      retry: { maxAttempts: 5, initialWaitMs: 10 * MINUTE, maxWaitMs: 10 * MINUTE },
      worker: { maxInflight: 1 },
      security: { basicAuth: true, secretMountPath },
    },
  });
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await openKvBucket(nc, RECORDS_BUCKET, { replicas: 1, storage: 'memory', ttlMs: 3_600_000 });

  // One done, one waiting out a 10-minute back-off, one running (held), two never delivered.
  const [done] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'ok');
  await sink.waitForCallId(done!);
  const [failing] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'fail');
  await recordReaches(kv, failing!, 'retrying');
  await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'hold');
  await fn.waitForConcurrent(1);
  await enqueueMany(gateway.url, 'work', 2, sink.url, () => 'ok');

  const anonymous = await getQueues(gateway.url);
  t.equal(anonymous.status, 401, 'no credentials: 401');
  t.equal(anonymous.headers['x-asyncfn-error'], 'ASYNCFN_ERR_UNAUTHORIZED');
  t.match(anonymous.headers['www-authenticate'], /^Basic /);
  const wrong = await getQueues(gateway.url, `Basic ${Buffer.from(`${USER}:nope`).toString('base64')}`);
  t.equal(wrong.status, 401, 'wrong password: 401');

  const before = Date.now();
  const res = await getQueues(gateway.url, ADMIN);
  t.equal(res.status, 200, res.text);
  t.match(res.headers['content-type'], /^application\/json/);
  t.equal(res.headers['cache-control'], 'no-store');
  const api = JSON.parse(res.text) as QueuesJson;
  t.ok(Date.parse(api.at) >= before - 1_000 && Date.parse(api.at) <= Date.now() + 1_000, `at is now: ${api.at}`);

  const [queue] = api.queues;
  t.match(queue, { name: 'faas-request', kind: 'queue', messages: 4, pending: 2, ackPending: 2, inFlight: 1, waitingRetries: 1, redelivered: 0, consumers: 2 });
  t.match(queue!.lanes, [
    { lane: 'work.openfaas-fn', consumer: 'faas-workers_f_work_openfaas-fn', pending: 2, ackPending: 2, inFlight: 1, waitingRetries: 1, limit: null },
  ]);
  t.equal(queue!.lanes.length, 1, 'one lane row');
  t.same(
    api.queues.slice(1).map((q) => q.kind),
    ['delayed', 'callbacks', 'deadLetters'],
    'then the delayed, callback and dead-letter streams',
  );

  // Same state, same document: the CLI and the API read and shape it with the same code.
  const cli = await cliQueuesJson(nats.url, config);
  t.same(counts(api), counts(cli), 'every count and lane equals `asyncfn queues --json`');
  t.equal(fn.requests.filter((r) => r.body.toString() === 'fail').length, 1, 'the retry has not run again');
});

t.test('GET /system/queues answers 503 with Retry-After when NATS is down', async (t) => {
  const { nats, gateway } = await startStack(t, { worker: false });
  const up = await getQueues(gateway.url);
  t.equal(up.status, 200, 'without basic_auth the route is open, like the other /system routes');
  t.match(JSON.parse(up.text), { queues: [{ name: 'faas-request', kind: 'queue', pending: 0 }] });

  await nats.kill9();
  let down = up;
  await eventually(async () => {
    down = await getQueues(gateway.url);
    return down.status !== 200;
  }, 'the gateway to notice NATS is gone');
  t.equal(down.status, 503, down.text);
  t.equal(down.headers['x-asyncfn-error'], 'ASYNCFN_ERR_QUEUE_UNAVAILABLE');
  t.equal(down.headers['retry-after'], '1');
  t.match(down.headers['content-type'], /^text\/plain/);
});
