import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import t from 'tap';
import { request } from 'undici';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import type { Config, DeepPartial } from '../../src/config/index.js';
import { connectNats } from '../../src/nats/connection.js';
import { DEAD_LETTER_STREAM, PAYLOAD_BUCKET, payloadStreamName } from '../../src/queue/topology.js';
import { configFor, resolverFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { readAnswer, type JsonAnswer } from '../helpers/json-answer.js';
import { startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

const USER = 'admin';
const PASSWORD = 'dead-letters-secret-password';
const ADMIN = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
/** Bodies above this go to the payload bucket (claim check), so a small body can be a "large" one. */
const MAX_BODY_BYTES = 8192;

/** `authorization`: the admin's credentials unless told otherwise; null sends none. */
async function call(method: 'GET' | 'DELETE', url: string, authorization: string | null = ADMIN): Promise<JsonAnswer> {
  return readAnswer(await request(url, { method, headers: authorization ? { authorization } : {} }));
}

interface Item {
  seq: number;
  callId: string | null;
  function: string | null;
  namespace: string | null;
  queue: string;
  reason: string;
  lastStatus: number | null;
  attempts: number;
  atMs: number;
  bodyBytes: number;
}
interface Page {
  items: Item[];
  next: number | null;
}

/** Chunk messages left in the payload bucket (metas of deleted objects are not chunks). */
async function chunksStored(jsm: JetStreamManager): Promise<number> {
  const info = await jsm.streams.info(payloadStreamName(PAYLOAD_BUCKET), { subjects_filter: `$O.${PAYLOAD_BUCKET}.C.>` });
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
}

t.test(
  'GET and DELETE /system/dead-letters: list by filter and page, detail with secrets redacted, purge with dry run; behind basic_auth',
  { timeout: 120_000 },
  async (t) => {
    const nats = await startNatsServer(t);
    const secrets = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
    t.teardown(() => rm(secrets, { recursive: true, force: true }));
    await writeFile(join(secrets, 'basic-auth-user'), `${USER}\n`);
    await writeFile(join(secrets, 'basic-auth-password'), `${PASSWORD}\n`);
    // Both always fail: with max attempts 1 (configFor), each invocation is dead-lettered at once.
    const failing = startFunctionServer.bind(null, t, (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
    });
    const flaky = await failing();
    const broken = await failing();
    const sink = await startCallbackSink(t);
    const overrides = { security: { basicAuth: true, secretMountPath: secrets }, gateway: { maxBodyBytes: MAX_BODY_BYTES } } as DeepPartial<Config>;
    const config = configFor(nats.url, overrides);
    const resolver = resolverFor({ flaky: flaky.url, broken: broken.url });
    const gateway = await startTestGateway(t, config, resolver);
    await startTestWorker(t, config, resolver);
    const base = `${gateway.url}/system/dead-letters`;

    // The routes are admin routes: nothing without credentials, before anything exists.
    for (const [method, url] of [
      ['GET', base],
      ['GET', `${base}/1`],
      ['DELETE', `${base}?all=true`],
    ] as const) {
      const anonymous = await call(method, url, null);
      t.equal(anonymous.status, 401, `${method} ${url}: 401 without credentials`);
      t.equal(anonymous.headers['x-asyncfn-error'], 'ASYNCFN_ERR_UNAUTHORIZED');
      t.equal((await call(method, url, `Basic ${Buffer.from(`${USER}:wrong`).toString('base64')}`)).status, 401, `${method} ${url}: 401 with a wrong password`);
    }
    const empty = await call('GET', base);
    t.equal(empty.status, 200, empty.text);
    t.same(empty.json, { items: [], next: null }, 'no dead-letter stream yet: an empty page');

    const enqueue = async (fn: string, body: string | Uint8Array, headers: Record<string, string> = {}): Promise<string> => {
      const res = await request(`${gateway.url}/async-function/${fn}`, { method: 'POST', body, headers: { 'x-callback-url': sink.url, ...headers } });
      const text = await res.body.text();
      if (res.statusCode !== 202) throw new Error(`enqueue to ${fn} answered ${res.statusCode}: ${text}`);
      return String(res.headers['x-call-id']);
    };
    // One at a time, each dead-lettered before the next, so that sequences follow this order.
    const nc = await connectNats({ url: nats.url }, { name: 'dead-letters-api-test' });
    t.teardown(() => nc.close());
    const jsm = await jetstreamManager(nc);
    const deadLetters = async (): Promise<number> => (await jsm.streams.info(DEAD_LETTER_STREAM).catch(() => undefined))?.state.messages ?? 0;
    const flakyIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      flakyIds.push(await enqueue('flaky', `job-${i}`, { authorization: 'Bearer top-secret-token', 'x-tenant': 'acme', 'x-api-key': 'k-123' }));
      await eventually(async () => (await deadLetters()) === i + 1, `dead letter ${i + 1}`, 30_000);
    }
    const longText = 'ab'.repeat(2_500);
    const longId = await enqueue('broken', longText, { 'content-type': 'text/plain' });
    await eventually(async () => (await deadLetters()) === 4, 'dead letter 4', 30_000);
    const binary = Uint8Array.from([0, 1, 2, 254, 255, 10]);
    const binaryId = await enqueue('broken', binary, { 'content-type': 'application/octet-stream' });
    await eventually(async () => (await deadLetters()) === 5, 'dead letter 5', 30_000);
    const large = 'L'.repeat(MAX_BODY_BYTES + 1_000);
    const largeId = await enqueue('broken', large, { 'content-type': 'text/plain' });
    await eventually(async () => (await deadLetters()) === 6, 'dead letter 6', 30_000);
    t.ok((await chunksStored(jsm)) > 0, 'the large body is in the payload bucket');

    // The whole list, oldest first.
    const all = await call('GET', base);
    t.equal(all.status, 200, all.text);
    const allPage = all.json as Page;
    t.same(
      allPage.items.map((i) => i.callId),
      [...flakyIds, longId, binaryId, largeId],
      'every dead letter, oldest first',
    );
    t.equal(allPage.next, null);
    const first = allPage.items[0]!;
    t.match(first, { function: 'flaky', namespace: 'openfaas-fn', queue: 'faas-request', reason: 'retriesExhausted', lastStatus: 500, attempts: 1, bodyBytes: 5 });
    t.ok(first.atMs > 0 && first.atMs <= Date.now(), 'atMs is a time');
    t.equal(allPage.items[3]!.bodyBytes, longText.length, 'bodyBytes without reading the body');
    t.equal(allPage.items[5]!.bodyBytes, large.length, "a large body's size");

    // Filter and pages.
    const page1 = await call('GET', `${base}?function=flaky&limit=2`);
    t.equal(page1.status, 200, page1.text);
    const p1 = page1.json as Page;
    t.same(
      p1.items.map((i) => i.callId),
      flakyIds.slice(0, 2),
      'the first page: two of flaky',
    );
    t.equal(p1.next, p1.items[1]!.seq, 'next: the cursor after the last item');
    const page2 = await call('GET', `${base}?function=flaky&limit=2&after=${p1.next}`);
    const p2 = page2.json as Page;
    t.same(
      p2.items.map((i) => i.callId),
      flakyIds.slice(2),
      'the second page: the last of flaky',
    );
    t.equal(p2.next, null, 'the end');
    const byReason = await call('GET', `${base}?function=broken.openfaas-fn&reason=retriesExhausted&since=1h`);
    t.equal((byReason.json as Page).items.length, 3, 'function as name.namespace, reason and since together');
    const none = await call('GET', `${base}?reason=expired`);
    t.same(none.json, { items: [], next: null });

    // Bad filters: the words of the CLI, naming the fields as the query string does.
    const badReason = await call('GET', `${base}?reason=bogus`);
    t.equal(badReason.status, 400);
    t.equal(badReason.headers['x-asyncfn-error'], 'ASYNCFN_ERR_BAD_REQUEST');
    t.match(badReason.text, /^"reason" "bogus" is not one of retriesExhausted/);
    const badSince = await call('GET', `${base}?since=yesterday`);
    t.equal(badSince.status, 400, badSince.text);
    t.match(badSince.text, /"since"/);
    t.equal((await call('GET', `${base}?colour=red`)).status, 400, 'an unknown field');
    t.equal((await call('GET', `${base}?limit=501`)).status, 400, 'a limit above 500');
    t.equal((await call('GET', `${base}?after=x`)).status, 400, 'a cursor that is no sequence');
    t.equal((await call('DELETE', `${base}?queue=no%20such`)).status, 400, 'a bad filter on DELETE');

    // Detail.
    const detail = await call('GET', `${base}/${first.seq}`);
    t.equal(detail.status, 200, detail.text);
    const d = detail.json as Record<string, unknown> & { headers: Record<string, unknown> };
    t.match(d, { seq: first.seq, callId: flakyIds[0], function: 'flaky', method: 'POST', path: '/', query: '', callbackUrl: sink.url, lastStatus: 500, attempts: 1 });
    t.equal(d.headers.authorization, '[redacted]', 'Authorization is redacted');
    t.equal(d.headers['x-api-key'], '[redacted]', 'an API key is redacted');
    t.equal(d.headers['x-tenant'], 'acme', 'other headers are kept');
    t.notOk(detail.text.includes('top-secret-token'), 'the secret appears nowhere in the answer');
    t.match(d, { body: 'job-0', bodyEncoding: 'utf8', bodyBytes: 5, bodyTruncated: false, bodyRef: null });

    const long = (await call('GET', `${base}/${allPage.items[3]!.seq}`)).json as Record<string, unknown>;
    t.match(long, { bodyEncoding: 'utf8', bodyBytes: longText.length, bodyTruncated: true });
    t.equal(long.body, longText.slice(0, 4096), 'the first 4 KiB');
    const bin = (await call('GET', `${base}/${allPage.items[4]!.seq}`)).json as Record<string, unknown>;
    t.match(bin, { body: Buffer.from(binary).toString('base64'), bodyEncoding: 'base64', bodyBytes: binary.length, bodyTruncated: false });
    const big = (await call('GET', `${base}/${allPage.items[5]!.seq}`)).json as Record<string, unknown>;
    t.match(big, { body: '', bodyBytes: large.length, bodyTruncated: true, bodyRef: String });

    const unknown = await call('GET', `${base}/999999`);
    t.equal(unknown.status, 404);
    t.equal(unknown.headers['x-asyncfn-error'], 'ASYNCFN_ERR_DEAD_LETTER_NOT_FOUND');
    t.equal(unknown.text, 'no dead letter with sequence 999999\n');
    t.equal((await call('GET', `${base}/0`)).status, 400, 'a sequence must be positive');

    // Purge.
    const noFilter = await call('DELETE', base);
    t.equal(noFilter.status, 400, 'no criterion without all=true');
    t.match(noFilter.text, /no filter/);
    const dry = await call('DELETE', `${base}?function=broken&dryRun=true`);
    t.equal(dry.status, 200, dry.text);
    t.same(dry.json, { matched: 3, purged: 0, dryRun: true });
    t.equal(await deadLetters(), 6, 'the dry run deleted nothing');
    const purged = await call('DELETE', `${base}?function=broken`);
    t.equal(purged.status, 200, purged.text);
    t.same(purged.json, { matched: 3, purged: 3, dryRun: false });
    t.same(
      ((await call('GET', base)).json as Page).items.map((i) => i.callId),
      flakyIds,
      "only flaky's dead letters are left",
    );
    t.equal(await chunksStored(jsm), 0, "the purged dead letter's large body is deleted too");
    t.equal((await call('GET', `${base}/${allPage.items[3]!.seq}`)).status, 404, 'a purged dead letter is gone');

    const everything = await call('DELETE', `${base}?all=true`);
    t.same(everything.json, { matched: 3, purged: 3, dryRun: false });
    t.same((await call('GET', base)).json, { items: [], next: null }, 'the list is empty');
    const out: string[] = [];
    const code = await runDlqCommand(['list'], { natsUrl: nats.url, out: (l) => out.push(l), err: () => undefined });
    t.equal(code, 0);
    t.same(out, ['0 dead letters'], 'asyncfn dlq list agrees');
  },
);
