import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { runStatusCommand, StatusExit } from '../../src/cli/status.js';
import type { InvocationRecord } from '../../src/status/records.js';
import { REPO_ROOT } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { openKvBucket, RECORDS_BUCKET } from '../../src/queue/topology.js';
import { asyncfnNodeArgs } from '../helpers/repo-root.js';

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const T0 = NOW - 60_000;

interface Env {
  url: string;
  kv: KV;
  jsm: JetStreamManager;
  /** Runs `asyncfn status <args>` against this server with the clock at NOW. */
  status(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }>;
}

async function setup(t: Test, opts: { bucket?: boolean } = {}): Promise<Env> {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = opts.bucket === false ? (undefined as unknown as KV) : await openKvBucket(nc, RECORDS_BUCKET, { replicas: 1, storage: 'memory', ttlMs: 3_600_000 });
  return { url: nats.url, kv, jsm: await jetstreamManager(nc), status: (...args) => runStatus(nats.url, args) };
}

async function runStatus(natsUrl: string, args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runStatusCommand(args, { natsUrl, out: (l) => out.push(...l.split('\n')), err: (l) => err.push(l), now: () => NOW });
  return { code, out, err };
}

const succeeded = (callId: string): InvocationRecord => ({
  callId,
  function: 'echo',
  namespace: 'openfaas-fn',
  queue: 'faas-request',
  state: 'succeeded',
  attempts: 2,
  status: 200,
  enqueuedAtMs: T0,
  startedAtMs: T0 + 2_000,
  finishedAtMs: T0 + 3_500,
});

const running = (callId: string): InvocationRecord => ({
  callId,
  function: 'slow',
  namespace: 'openfaas-fn',
  queue: 'long-jobs',
  state: 'running',
  attempts: 1,
  enqueuedAtMs: T0,
  startedAtMs: T0 + 250,
});

async function put(kv: KV, r: InvocationRecord): Promise<void> {
  await kv.put(r.callId, JSON.stringify(r));
}

t.test('a finished invocation: key/value lines with ISO times and durations, exit 0', async (t) => {
  const env = await setup(t);
  const id = randomUUID();
  await put(env.kv, succeeded(id));
  const { code, out, err } = await env.status(id);
  t.equal(code, 0);
  t.same(err, []);
  t.same(out, [
    `call id:      ${id}`,
    'state:        succeeded (final)',
    'function:     echo.openfaas-fn',
    'queue:        faas-request',
    'attempts:     2',
    'last status:  200',
    'enqueued at:  2025-06-01T11:59:00.000Z',
    'started at:   2025-06-01T11:59:02.000Z (last attempt)',
    'finished at:  2025-06-01T11:59:03.500Z',
    'duration:     1.5s (last attempt, started → finished)',
    'total:        3.5s (enqueued → finished)',
    'error:        -',
  ]);
});

t.test('a running invocation shows its age and unknown times as "-"', async (t) => {
  const env = await setup(t);
  const id = randomUUID();
  await put(env.kv, running(id));
  const { code, out } = await env.status(id);
  t.equal(code, 0);
  t.match(out, ['call id:', 'state:        running', 'function:     slow.openfaas-fn', 'queue:        long-jobs', 'attempts:     1', 'last status:  -']);
  t.ok(out.includes('started at:   2025-06-01T11:59:00.250Z'));
  t.ok(out.includes('finished at:  -'));
  t.ok(out.includes('age:          1m0s (enqueued → now)'));
  t.notOk(out.some((l) => l.startsWith('duration:')));
});

t.test('--json: the record with ISO times, durations and every key present', async (t) => {
  const env = await setup(t);
  const id = randomUUID();
  await put(env.kv, succeeded(id));
  const { code, out } = await env.status(id, '--json');
  t.equal(code, 0);
  t.same(JSON.parse(out.join('\n')), {
    callId: id,
    state: 'succeeded',
    final: true,
    function: 'echo',
    namespace: 'openfaas-fn',
    queue: 'faas-request',
    attempts: 2,
    status: 200,
    enqueuedAt: '2025-06-01T11:59:00.000Z',
    notBefore: null,
    startedAt: '2025-06-01T11:59:02.000Z',
    finishedAt: '2025-06-01T11:59:03.500Z',
    enqueuedAtMs: T0,
    notBeforeMs: null,
    startedAtMs: T0 + 2_000,
    finishedAtMs: T0 + 3_500,
    durationMs: null,
    attemptMs: 1_500,
    totalMs: 3_500,
    ageMs: null,
    error: null,
    result: null,
    progress: null,
  });
});

t.test('a delayed invocation shows "not before"; a kept result and the function call duration are shown', async (t) => {
  const env = await setup(t);
  const scheduled = randomUUID();
  await put(env.kv, { ...running(scheduled), state: 'scheduled', attempts: 0, startedAtMs: undefined, notBeforeMs: NOW + 3_600_000 });
  const s = await env.status(scheduled);
  t.equal(s.code, 0);
  t.ok(s.out.includes('state:        scheduled'));
  t.ok(s.out.includes('not before:   2025-06-01T13:00:00.000Z'));

  const kept = randomUUID();
  await put(env.kv, { ...succeeded(kept), durationMs: 1_204, result: { stored: true, status: 200, contentType: 'application/json', bytes: 17 } });
  const k = await env.status(kept);
  t.ok(k.out.includes('duration:     1.204s (last function call)'));
  t.ok(k.out.includes(`result:       stored: 200 application/json, 17 bytes (GET /async-function/${kept}/result)`));
  const json: unknown = JSON.parse((await env.status(kept, '--json')).out.join('\n'));
  t.match(json, { durationMs: 1_204, attemptMs: 1_500, result: { stored: true, status: 200, bytes: 17 } });

  const big = randomUUID();
  await put(env.kv, { ...succeeded(big), result: { stored: false, status: 200, bytes: 9_000_000, reason: 'larger than result_max_size' } });
  t.ok((await env.status(big)).out.includes('result:       not stored: 200, 9000000 bytes (larger than result_max_size)'));
});

t.test('an unknown call id exits 1; so does a server without a records bucket', async (t) => {
  const env = await setup(t);
  const unknown = await env.status('no-such-call');
  t.equal(unknown.code, StatusExit.notFound);
  t.same(unknown.out, []);
  t.same(unknown.err, ['asyncfn status: no invocation with call id "no-such-call"']);

  const bare = await setup(t, { bucket: false });
  const none = await bare.status(randomUUID());
  t.equal(none.code, StatusExit.notFound);
  t.match(none.err[0], /bucket asyncfn_invocations does not exist/);
  t.notOk(
    await bare.jsm.streams.info(`KV_${RECORDS_BUCKET}`).then(
      () => true,
      () => false,
    ),
    'asking did not create the bucket',
  );
});

t.test('--wait returns when the invocation turns final, exit 0', async (t) => {
  const env = await setup(t);
  const id = randomUUID();
  await put(env.kv, running(id));
  const run = env.status(id, '--wait=10m', '--json');
  // The wait is a core subscription, invisible from here: the final record is written until the
  // command has seen it (from its first read or from its subscription, whichever came first).
  let settled = false;
  void run.finally(() => (settled = true));
  await eventually(async () => settled || (await put(env.kv, { ...succeeded(id), function: 'slow' }), false), 'the status wait to end');
  const { code, out, err } = await run;
  t.equal((await env.jsm.streams.info(`KV_${RECORDS_BUCKET}`)).state.consumer_count, 0, 'no consumer left behind');
  t.equal(code, 0);
  t.same(err, []);
  t.match(JSON.parse(out.join('\n')), { callId: id, state: 'succeeded', final: true, function: 'slow' });
});

t.test('--wait that runs out: the current record, a note on stderr, exit 3', async (t) => {
  const env = await setup(t);
  const id = randomUUID();
  await put(env.kv, running(id));
  const { code, out, err } = await env.status('--wait=300ms', id);
  t.equal(code, StatusExit.waitTimedOut);
  t.ok(out.includes('state:        running'));
  t.same(err, ['asyncfn status: still running after waiting 300ms']);

  const unknown = await env.status(randomUUID(), '--wait=200ms');
  t.equal(unknown.code, StatusExit.notFound);
  t.match(unknown.err[0], /after waiting 200ms$/);
});

t.test('--wait on a finished invocation returns at once with exit 0', async (t) => {
  const env = await setup(t);
  const id = randomUUID();
  await put(env.kv, succeeded(id));
  const { code } = await env.status(id, '--wait');
  t.equal(code, 0);
});

t.test('bad arguments exit 2 before connecting; --help documents the exit codes', async (t) => {
  for (const args of [[], ['a', 'b'], ['a', '--wait=abc'], ['a', '--wait=0'], ['a', '--wait=-1s'], ['a', '--bogus']]) {
    const { code, err } = await runStatus('nats://127.0.0.1:1', args);
    t.equal(code, StatusExit.usage, args.join(' '));
    t.match(err[0], /^asyncfn status: .*\(asyncfn status --help\)$/);
  }
  const help = await runStatus('', ['--help']);
  t.equal(help.code, 0);
  t.match(
    help.out.join('\n'),
    /Exit codes:\n {2}0 {2}found[\s\S]*\n {2}1 {2}no invocation[\s\S]*\n {2}2 {2}bad arguments\n {2}3 {2}--wait: not final[\s\S]*\n {2}4 {2}the records could not be read/,
  );
});

t.test('NATS not configured or not reachable: exit 4', async (t) => {
  const none = await runStatus('', ['abc']);
  t.equal(none.code, StatusExit.failed);
  t.match(none.err[0], /no NATS server configured/);
  const down = await runStatus('nats://127.0.0.1:1', ['abc']);
  t.equal(down.code, StatusExit.failed);
  t.match(down.err[0], /^asyncfn status: .*127\.0\.0\.1:1/);
});

t.test('`asyncfn status` as a process: arguments, output and exit code pass through', async (t) => {
  const env = await setup(t);
  const id = randomUUID();
  await put(env.kv, running(id));
  const result = await promisify(execFile)(process.execPath, [...asyncfnNodeArgs(), 'status', id, '--wait=100ms', '--json'], {
    cwd: REPO_ROOT,
    env: { ...process.env, NATS_URL: env.url },
  }).then(
    () => ({ code: 0, stdout: '', stderr: '' }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
  t.equal(result.code, StatusExit.waitTimedOut, result.stderr);
  t.match(JSON.parse(result.stdout), { callId: id, state: 'running', final: false });
  t.match(result.stderr, 'asyncfn status: still running after waiting 100ms');
});
