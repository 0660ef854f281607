import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { runCancelCommand } from '../../src/cli/cancel.js';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import type { Config, DeepPartial } from '../../src/config/index.js';
import { connectNats } from '../../src/nats/connection.js';
import { bucketOptions, CANCELLATIONS_BUCKET, DEAD_LETTER_STREAM, RECORDS_BUCKET } from '../../src/queue/topology.js';
import type { InvocationRecord } from '../../src/status/records.js';
import { readRecord } from '../../src/status/wait.js';
import { configFor, resolverFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { eventually } from '../helpers/eventually.js';
import { readAnswer, type JsonAnswer } from '../helpers/json-answer.js';
import { startCallbackSink, startFunctionServer, type Handler } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

const USER = 'admin';
const PASSWORD = 'bulk-secret-password';
const ADMIN = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

async function connect(t: Test, url: string): Promise<NatsConnection> {
  const nc = await connectNats({ url }, { name: 'bulk-test' });
  t.teardown(() => nc.close());
  return nc;
}

async function bucket(nc: NatsConnection, name: string): Promise<KV> {
  return new Kvm(nc).open(name);
}

/** Keys holding a value now (deleted ones excluded). */
async function keyCount(kv: KV): Promise<number> {
  let n = 0;
  for await (const _ of await kv.keys()) n += 1;
  return n;
}

/** Whether the status API reads a record for every call id: its own, or its group's `queued` (queued-groups.ts). */
async function allRecorded(records: KV, callIds: readonly string[]): Promise<boolean> {
  return (await Promise.all(callIds.map((id) => readRecord(records, id)))).every((record) => record !== undefined);
}

/** POSTs async invocations, `concurrency` at a time; every one must be answered 202. */
async function enqueueParallel(
  gatewayUrl: string,
  fn: string,
  count: number,
  callbackUrl: string,
  concurrency = 32,
  headers: Record<string, string> = {},
): Promise<string[]> {
  const ids: string[] = new Array<string>(count);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const res = await request(`${gatewayUrl}/async-function/${fn}`, { method: 'POST', body: `job-${i}`, headers: { 'x-callback-url': callbackUrl, ...headers } });
      await res.body.dump();
      if (res.statusCode !== 202) throw new Error(`enqueue ${i} answered ${res.statusCode}`);
      ids[i] = String(res.headers['x-call-id']);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return ids;
}

async function post(url: string, body: unknown, authorization?: string): Promise<JsonAnswer> {
  const res = await request(url, {
    method: 'POST',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(authorization ? { authorization } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return readAnswer(res);
}

t.test(
  'asyncfn cancel --function f --state queued --dry-run counts, then cancels 2,000 queued invocations with a progress bar; none of them runs',
  { timeout: 240_000 },
  async (t) => {
    const nats = await startNatsServer(t);
    const release = deferred<void>();
    // f: the first request ("block") holds the worker's only slot until released.
    const blocker: Handler = async (req, res) => {
      if (req.body.toString() === 'block') await release.promise;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    };
    const f = await startFunctionServer(t, blocker);
    const g = await startFunctionServer(t);
    const sink = await startCallbackSink(t);
    const config = configFor(nats.url, { worker: { maxInflight: 1 } });
    const resolver = resolverFor({ f: f.url, g: g.url });
    const gateway = await startTestGateway(t, config, resolver);
    await startTestWorker(t, config, resolver);
    t.teardown(() => release.resolve());

    const blocked = await request(`${gateway.url}/async-function/f`, { method: 'POST', body: 'block', headers: { 'x-callback-url': sink.url } });
    await blocked.body.dump();
    const blockedId = String(blocked.headers['x-call-id']);
    await f.waitForConcurrent(1);

    const ids = await enqueueParallel(gateway.url, 'f', 2_000, sink.url);
    // g waits behind the blocked slot too; its invocations are not f's and must run.
    const others = await enqueueParallel(gateway.url, 'g', 5, sink.url, 5);
    const nc = await connect(t, nats.url);
    const records = await bucket(nc, RECORDS_BUCKET);
    await eventually(() => allRecorded(records, [blockedId, ...ids, ...others]), 'the records of every invocation', 30_000);

    const run = async (args: string[], tty?: (chunk: string) => void) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCancelCommand(args, { natsUrl: nats.url, out: (l) => out.push(l), err: (l) => err.push(l), tty, bucketOptions: bucketOptions(config) });
      return { code, out, err };
    };

    const dry = await run(['--function', 'f', '--state', 'queued', '--dry-run']);
    t.equal(dry.code, 0, `dry run exits 0 (${dry.err.join('; ')})`);
    t.match(dry.out[0], /^2000 invocations would be cancelled \(\d+ records read\)$/, 'the dry run counts the queued invocations of f');
    t.equal(dry.out[1], '  by state:    queued 2000');
    t.equal(dry.out[2], '  by function: f.openfaas-fn 2000');
    const cancellations = await bucket(nc, CANCELLATIONS_BUCKET);
    t.equal(await keyCount(cancellations), 0, 'the dry run wrote no cancellation marker');

    const unconfirmed = await run(['--function', 'f', '--state', 'queued']);
    t.equal(unconfirmed.code, 1, 'more than 10 without --yes: not confirmed');
    t.equal(unconfirmed.out.at(-1), 'pass --yes to cancel them');
    t.equal(await keyCount(cancellations), 0, 'nothing cancelled without --yes');

    const frames: string[] = [];
    const real = await run(['--function', 'f', '--state', 'queued', '--yes'], (chunk) => frames.push(chunk));
    t.equal(real.code, 0, `the real run exits 0 (${real.err.join('; ')})`);
    t.match(real.out.at(-1), /^cancelled 2000 of 2000 \(\d+ records read\)$/);
    t.ok(
      frames.some((f) => f.includes('] 2000/2000 100%')),
      'a progress bar reached 2000/2000 on the terminal',
    );
    t.ok(frames.length >= 2 && frames.length < 200, `redrawn a few times, not once per item (${frames.length} frames)`);
    t.equal(await keyCount(cancellations), 2_000, 'one marker per cancelled invocation');
    const marked = new Set<string>();
    for await (const key of await cancellations.keys()) marked.add(key);
    t.ok(
      ids.every((id) => marked.has(id)),
      'every queued invocation of f is marked',
    );
    t.notOk(marked.has(blockedId), 'the running one (state running, not queued) is not');

    release.resolve();
    await sink.waitFor(2_006, 120_000);
    t.equal(f.requests.length, 1, 'f ran only for the blocking request: none of the 2,000 ran');
    t.equal(g.requests.length, 5, "g's invocations, outside the filter, ran");
    const byId = new Map(sink.received.map((r) => [String(r.headers['x-call-id']), r]));
    t.ok(
      ids.every((id) => byId.get(id)?.headers['x-function-status'] === '499'),
      'every cancelled invocation reported 499 to its callback',
    );
    t.ok(others.every((id) => byId.get(id)?.headers['x-function-status'] === '200'));
    t.equal(byId.get(blockedId)?.headers['x-function-status'], '200');
    const sample = [ids[0]!, ids[999]!, ids[1_999]!];
    // The final record is written beside the callback, not before it.
    for (const id of sample) {
      await eventually(async () => (await records.get(id))?.json<InvocationRecord>().state === 'cancelled', `record ${id} to say cancelled`, 15_000);
    }
    t.pass('their records say cancelled');
  },
);

t.test('POST /system/invocations/cancel and /system/dead-letters/replay: behind basic_auth, dry run, then the real run', { timeout: 120_000 }, async (t) => {
  const nats = await startNatsServer(t);
  const secrets = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
  t.teardown(() => rm(secrets, { recursive: true, force: true }));
  await writeFile(join(secrets, 'basic-auth-user'), `${USER}\n`);
  await writeFile(join(secrets, 'basic-auth-password'), `${PASSWORD}\n`);
  let failing = true;
  const work = await startFunctionServer(t);
  const flaky = await startFunctionServer(t, (_req, res) => {
    res.writeHead(failing ? 500 : 200, { 'content-type': 'text/plain' }).end(failing ? 'down' : 'fine');
  });
  const sink = await startCallbackSink(t);
  const overrides: DeepPartial<Config> = { worker: { maxInflight: 4 }, security: { basicAuth: true, secretMountPath: secrets } };
  const config = configFor(nats.url, { ...overrides, log: { level: process.env.BULK_LOG ?? 'silent' } } as DeepPartial<Config>);
  const resolver = resolverFor({ work: work.url, flaky: flaky.url });
  const gateway = await startTestGateway(t, config, resolver);
  const cancelUrl = `${gateway.url}/system/invocations/cancel`;
  const replayUrl = `${gateway.url}/system/dead-letters/replay`;

  for (const url of [cancelUrl, replayUrl]) {
    const anonymous = await post(url, { function: 'work' });
    t.equal(anonymous.status, 401, `${url}: 401 without credentials`);
    t.equal(anonymous.headers['x-asyncfn-error'], 'ASYNCFN_ERR_UNAUTHORIZED');
    const noFilter = await post(url, {}, ADMIN);
    t.equal(noFilter.status, 400, `${url}: no filter is refused`);
    t.match(noFilter.text, /no filter/);
    const badField = await post(url, { colour: 'red' }, ADMIN);
    t.equal(badField.status, 400, `${url}: an unknown field is refused`);
  }
  const final = await post(cancelUrl, { state: 'succeeded' }, ADMIN);
  t.equal(final.status, 400, 'a final state cannot be cancelled');

  // No worker yet: every invocation stays queued.
  const ids = await enqueueParallel(gateway.url, 'work', 30, sink.url, 10);
  const nc = await connect(t, nats.url);
  const records = await bucket(nc, RECORDS_BUCKET);
  await eventually(() => allRecorded(records, ids), 'the records of every invocation', 30_000);
  const cancellations = await bucket(nc, CANCELLATIONS_BUCKET);

  const dry = await post(`${cancelUrl}?dryRun=true`, { function: 'work', state: ['queued'] }, ADMIN);
  t.equal(dry.status, 200, dry.text);
  t.same(dry.json, { matched: 30, cancelled: 0, dryRun: true, byState: { queued: 30 }, byFunction: { 'work.openfaas-fn': 30 } });
  t.equal(await keyCount(cancellations), 0, 'the dry run wrote no marker');
  const none = await post(`${cancelUrl}?function=other`, undefined, ADMIN);
  t.equal(none.status, 200, 'the filter may come in the query string alone');
  t.match(none.json, { matched: 0, cancelled: 0 });

  const real = await post(cancelUrl, { function: 'work', since: '10m' }, ADMIN);
  t.equal(real.status, 200, real.text);
  t.match(real.json, { matched: 30, cancelled: 30, dryRun: false });
  t.equal(await keyCount(cancellations), 30);

  // A worker starting while markers exist reads them all before its first delivery (this hung
  // before: the last existing marker never counted as read).
  await startTestWorker(t, config, resolver);
  await sink.waitFor(30, 60_000);
  t.equal(work.requests.length, 0, 'no cancelled invocation ran');
  t.ok(
    ids.every((id) => sink.received.find((r) => r.headers['x-call-id'] === id)?.headers['x-function-status'] === '499'),
    'each reported 499 to its callback',
  );

  // Dead letters: three invocations of flaky fail their only attempt.
  const flakyIds = await enqueueParallel(gateway.url, 'flaky', 3, sink.url, 3);
  const jsm = await jetstreamManager(nc);
  await eventually(async () => (await jsm.streams.info(DEAD_LETTER_STREAM).catch(() => undefined))?.state.messages === 3, 'three dead letters', 30_000);
  const dlqOut: string[] = [];
  const dlqDry = await runDlqCommand(['replay', '--function', 'flaky', '--dry-run'], { natsUrl: nats.url, out: (l) => dlqOut.push(l), err: () => undefined });
  t.equal(dlqDry, 0);
  t.same(dlqOut, ['3 dead letters would be replayed'], 'asyncfn dlq replay --dry-run counts');

  const replayDry = await post(`${replayUrl}?dryRun=true`, { function: 'flaky' }, ADMIN);
  t.equal(replayDry.status, 200, replayDry.text);
  t.same(replayDry.json, { matched: 3, replayed: 0, skipped: 0, dryRun: true });
  t.equal((await jsm.streams.info(DEAD_LETTER_STREAM)).state.messages, 3, 'the dry runs replayed and deleted nothing');
  t.equal(flaky.requests.length, 3);

  failing = false;
  const replayed = await post(replayUrl, { function: 'flaky', reason: 'retriesExhausted' }, ADMIN);
  t.equal(replayed.status, 200, replayed.text);
  t.same(replayed.json, { matched: 3, replayed: 3, skipped: 0, dryRun: false });
  await sink.waitFor(36, 60_000);
  t.equal(flaky.requests.length, 6, 'each dead letter ran again once');
  for (const id of flakyIds) {
    const statuses = sink.received.filter((r) => r.headers['x-call-id'] === id).map((r) => r.headers['x-function-status']);
    t.same(statuses, ['500', '200'], `${id.slice(0, 8)}: failed, then succeeded under the same call id`);
  }
  t.equal((await jsm.streams.info(DEAD_LETTER_STREAM)).state.messages, 0, 'the replayed dead letters are deleted');
});

t.test('without basic_auth, a page of another site cannot cancel or replay: 403, nothing cancelled', async (t) => {
  const nats = await startNatsServer(t);
  const config = configFor(nats.url, { worker: { maxInflight: 1 } });
  const gateway = await startTestGateway(t, config, resolverFor({ work: 'http://127.0.0.1:9' }));
  const queued = await request(`${gateway.url}/async-function/work`, { method: 'POST', body: 'x' });
  t.equal(queued.statusCode, 202);
  await queued.body.dump();
  // What a cross-site fetch(url, { method: 'POST', mode: 'no-cors' }) sends: no body, so no preflight.
  for (const path of ['/system/invocations/cancel?all=true', '/system/dead-letters/replay?all=true']) {
    const res = await request(`${gateway.url}${path}`, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' } });
    t.equal(res.statusCode, 403, path);
    t.equal(res.headers['x-asyncfn-error'], 'ASYNCFN_ERR_CROSS_SITE');
    await res.body.dump();
  }
  const status = await request(`${gateway.url}/async-function/${String(queued.headers['x-call-id'])}`);
  t.match(await status.body.json(), { state: 'queued' }, 'the invocation was not cancelled');
});
