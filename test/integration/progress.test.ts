import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { request } from 'undici';
import { configFor, resolverFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { startFunctionServer, type FunctionServer, type Handler } from '../helpers/http-servers.js';
import { startNatsServer, writeSecretFiles } from '../helpers/nats-server.js';
import { waitForEvent } from '../helpers/eventually.js';
import { openKeysBucket } from '../../src/queue/topology.js';
import { loadProgressKey } from '../../src/status/progress-key.js';
import { progressUrl } from '../../src/status/progress-signing.js';
import { openRecords, type InvocationRecord } from '../../src/status/records.js';
import { mergeProgress } from '../../src/status/progress.js';
import { dirname } from 'node:path';

/**
 * Issue 17, item 3: progress from long jobs. A real nats-server, gateway and worker, and a real
 * function server that POSTs to the X-Asyncfn-Progress-Url it was given. Auth is on everywhere
 * (basic_auth for status, invoke_auth=bearer): the progress URL's signature is its only credential.
 */

const TOKEN = 'invoke-token-1';
const ADMIN = `Basic ${Buffer.from('admin:secret').toString('base64')}`;
const REPORTS = [10, 30, 50, 70, 90];
/** The function's "work" between two reports: REPORTS.length + 1 of them make the 20 s job. */
const WORK_MS = 20_000 / (REPORTS.length + 1);

interface Report {
  readonly percent: number;
  /** Date.now() just before the function sent it. */
  readonly sentAtMs: number;
  readonly status: number;
}

async function progressStack(t: Test, handler: Handler) {
  const secrets = await writeSecretFiles(t, { 'basic-auth-user': 'admin', 'basic-auth-password': 'secret', 'invoke-tokens': TOKEN });
  const secretMountPath = dirname(secrets['basic-auth-user']);
  const nats = await startNatsServer(t);
  const fn: FunctionServer = await startFunctionServer(t, handler);
  const resolver = resolverFor({ job: fn.url });
  const security = { secretMountPath, basicAuth: true, invokeAuth: 'bearer' as const };
  const gateway = await startTestGateway(t, configFor(nats.url, { security }), resolver);
  await startTestWorker(t, configFor(nats.url, { security, worker: { gatewayPublicUrl: gateway.url, upstreamTimeoutMs: 60_000 } }), resolver);
  return { nats, fn, gateway };
}

async function statusOf(gatewayUrl: string, callId: string): Promise<InvocationRecord> {
  const res = await request(`${gatewayUrl}/async-function/${callId}`, { headers: { authorization: ADMIN } });
  t.equal(res.statusCode, 200, 'the status route answers (with basic auth)');
  return (await res.body.json()) as InvocationRecord;
}

async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'POST', body, headers });
  return { status: res.statusCode, code: res.headers['x-asyncfn-error'], text: await res.body.text() };
}

t.test('progress reported by a 20 s job appears in GET /async-function/<id> within 1 s of each report', async (t) => {
  const reports: Report[] = [];
  const events = new EventEmitter();
  let givenUrl: string | undefined;
  const { gateway, nats } = await progressStack(t, async (req, res) => {
    givenUrl = String(req.headers['x-asyncfn-progress-url']);
    events.emit('started');
    for (const percent of REPORTS) {
      await delay(WORK_MS); // the job's work
      const sentAtMs = Date.now();
      // What a function author writes: one POST of a small JSON body, no credentials.
      const answer = await post(givenUrl, JSON.stringify({ percent, message: `step ${percent}` }), { 'content-type': 'application/x-www-form-urlencoded' });
      reports.push({ percent, sentAtMs, status: answer.status });
      events.emit('report');
    }
    await delay(WORK_MS);
    res.end('done');
  });

  const submitted = await request(`${gateway.url}/async-function/job`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${TOKEN}` } });
  t.equal(submitted.statusCode, 202);
  await submitted.body.dump();
  const callId = String(submitted.headers['x-call-id']);
  await waitForEvent(events, 'started', () => givenUrl !== undefined, 'the function to be called', 15_000);
  t.match(
    givenUrl,
    new RegExp(`^${gateway.url}/async-function/${callId}/progress\\?exp=\\d+&sig=[A-Za-z0-9_-]{43}$`),
    'the function got a signed progress URL for its call id',
  );

  const lags: number[] = [];
  for (const [i, percent] of REPORTS.entries()) {
    await waitForEvent(events, 'report', () => reports.length > i, `report ${percent}`, 30_000);
    t.equal(reports[i]!.status, 204, `report ${percent} answered 204`);
    // Bounded polling: at most 1 s after the report was sent, 25 ms apart.
    let seen: InvocationRecord['progress'];
    while (Date.now() - reports[i]!.sentAtMs <= 1_000) {
      seen = (await statusOf(gateway.url, callId)).progress;
      if (seen?.percent === percent) break;
      await delay(25);
    }
    t.equal(seen?.percent, percent, `${percent} % shows within 1 s of its report`);
    t.equal(seen?.message, `step ${percent}`);
    lags.push(Date.now() - reports[i]!.sentAtMs);

    if (i === 1) {
      // While the job runs: refusals leave the record as it is.
      const before = await statusOf(gateway.url, callId);
      const url = new URL(givenUrl!);
      const sig = url.searchParams.get('sig')!;
      const tampered = new URL(url);
      tampered.searchParams.set('sig', `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`);
      const refusedTampered = await post(tampered.toString(), '{"percent":99}');
      t.equal(refusedTampered.status, 403, 'a tampered signature: 403');
      t.equal(refusedTampered.code, 'ASYNCFN_ERR_PROGRESS_SIGNATURE');
      t.match(refusedTampered.text, /^progress URL refused: .+\n$/, 'one line saying why');

      const longerExp = new URL(url);
      longerExp.searchParams.set('exp', String(Number(url.searchParams.get('exp')) + 3600));
      t.equal((await post(longerExp.toString(), '{"percent":99}')).status, 403, 'a stretched exp: 403');

      // The same (valid) signature on another invocation's path.
      const otherCall = new URL(url);
      otherCall.pathname = '/async-function/another-call/progress';
      const refusedOther = await post(otherCall.toString(), '{"percent":99}');
      t.equal(refusedOther.status, 403, "another call id with this call's signature: 403");
      t.equal(refusedOther.code, 'ASYNCFN_ERR_PROGRESS_SIGNATURE');

      // A genuine signature (the shared key, read as a second worker would) that has expired.
      const nc = await connect({ servers: nats.url });
      t.teardown(() => nc.close());
      const { key, source } = await loadProgressKey('/nonexistent', () => openKeysBucket(nc, { replicas: 1, storage: 'file' }));
      t.equal(source, 'kv', 'no secret file: the key generated into the keys bucket');
      const expired = progressUrl(gateway.url, key, callId, Date.now() - 5_000);
      const refusedExpired = await post(expired, '{"percent":99}');
      t.equal(refusedExpired.status, 403, 'an expired URL: 403');
      t.equal(refusedExpired.code, 'ASYNCFN_ERR_PROGRESS_EXPIRED');
      const fresh = progressUrl(gateway.url, key, callId, Date.now() + 60_000);
      t.equal((await post(fresh, '{"percent":30,"message":"step 30"}')).status, 204, 'the same key, not expired: accepted (the key is shared through KV)');

      for (const [what, body] of [
        ['not JSON', 'percent=99'],
        ['percent out of range', '{"percent":101}'],
        ['an unknown field', '{"percent":99,"eta":5}'],
      ] as const) {
        const refused = await post(givenUrl!, body);
        t.equal(refused.status, 400, `a bad body (${what}): 400`);
        t.equal(refused.code, 'ASYNCFN_ERR_BAD_REQUEST');
      }
      const after = await statusOf(gateway.url, callId);
      t.equal(after.progress?.percent, before.progress?.percent, 'the refused reports changed nothing');
      t.equal(after.state, before.state);
    }
  }
  t.comment(`report → visible: ${lags.join(', ')} ms`);

  const final = await request(`${gateway.url}/async-function/${callId}?wait=30s`, { headers: { authorization: ADMIN } });
  const record = (await final.body.json()) as InvocationRecord;
  t.equal(record.state, 'succeeded');
  const late = await post(givenUrl!, '{"percent":100}');
  t.equal(late.status, 409, 'progress for a final invocation: 409');
  t.equal(late.code, 'ASYNCFN_ERR_PROGRESS_CLOSED');
  t.equal((await statusOf(gateway.url, callId)).state, 'succeeded', 'and the final record stays as it was');
});

t.test('without gateway_public_url no progress URL is sent, and a caller cannot plant one', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const resolver = resolverFor({ job: fn.url });
  const config = configFor(nats.url);
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const res = await request(`${gateway.url}/async-function/job`, { method: 'POST', body: 'x', headers: { 'x-asyncfn-progress-url': 'http://evil.example/collect' } });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  await fn.waitForRequests(1, 15_000);
  t.equal(fn.requests[0]!.headers['x-asyncfn-progress-url'], undefined);
  // A function named like a call id, on the path /progress without sig, is still invoked.
  const invoked = await request(`${gateway.url}/async-function/job/progress?x=1`, { method: 'POST', body: 'y' });
  t.equal(invoked.statusCode, 202, 'POST /async-function/<name>/progress without sig is an invocation');
  await invoked.body.dump();
  await fn.waitForRequests(2, 15_000);
  t.equal(fn.requests[1]!.url, '/progress?x=1');
});

t.test('two processes starting at once agree on one generated key', async (t) => {
  const nats = await startNatsServer(t);
  const ncs = await Promise.all([connect({ servers: nats.url }), connect({ servers: nats.url })]);
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
  const keys = await Promise.all(ncs.map((nc) => loadProgressKey('/nonexistent', () => openKeysBucket(nc, { replicas: 1, storage: 'file' }))));
  t.same(Buffer.from(keys[0]!.key), Buffer.from(keys[1]!.key));
  t.equal(keys[0]!.key.length, 32);
  const stored = await (await new Kvm(ncs[0]).open('asyncfn_keys')).get('progress-signing');
  t.same(Buffer.from(stored!.value), Buffer.from(keys[0]!.key), 'the key in the bucket');
});

t.test('a progress write that loses the race to the worker is redone on the newer record, never over it', async (t) => {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const records = await openRecords(nc, { replicas: 1, storage: 'memory', ttlMs: 60_000 });
  const base: InvocationRecord = { callId: 'race', function: 'f', namespace: 'ns', queue: 'q', state: 'running', attempts: 1, enqueuedAtMs: 1 };
  await records.put(base);
  const seen: Array<string | undefined> = [];
  const result = await records.update('race', (record) => {
    seen.push(record?.state);
    // The worker writes its final record between this read and the write below, once.
    if (seen.length === 1) void records.put({ ...base, state: 'succeeded' });
    const merged = mergeProgress(record!, { percent: 50, atMs: 2 });
    return merged.kind === 'updated' ? { write: merged.record, result: merged.kind } : { result: merged.kind };
  });
  t.same(seen, ['running', 'succeeded'], 'the conflict made it read again');
  t.equal(result, 'final');
  const stored = await records.get('race');
  t.equal(stored?.state, 'succeeded');
  t.equal(stored?.progress, undefined, 'the final record was not overwritten');
});
