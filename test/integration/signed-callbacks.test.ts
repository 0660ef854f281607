import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { SIGNING_SECRET_FILE } from '../../src/callback/signing.js';
import { staticResolver } from '../../src/functions/static-file.js';
import { ConfigError } from '../../src/errors.js';
import { configFor, REPO_ROOT, spawnAsyncfn, startProcessStack, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { startCallbackSink, startFunctionServer, type RecordedRequest } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { loadVerifySnippet } from '../helpers/readme-snippet.js';
import { asyncfnNodeArgs } from '../helpers/repo-root.js';

const { verifyCallback } = await loadVerifySnippet();

const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const headersOf = (r: RecordedRequest) => r.headers as Record<string, string>;

/** A secret mount directory holding callback-signing-secret with `text`; removed at teardown. */
async function secretDir(t: Test, text?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  if (text !== undefined) await writeFile(join(dir, SIGNING_SECRET_FILE), text, { mode: 0o600 });
  return dir;
}

async function post(url: string, body: Uint8Array | string, headers: Record<string, string>): Promise<string> {
  const res = await request(url, { method: 'POST', body, headers });
  await res.body.dump();
  if (res.statusCode !== 202) throw new Error(`enqueue answered ${res.statusCode}`);
  return String(res.headers['x-call-id']);
}

t.test('callbacks carry Standard Webhooks signatures over the exact bytes received, JSON and binary, one per secret', async (t) => {
  const [current, previous] = [newSecret(), newSecret()];
  const dir = await secretDir(t, `# rotating: the new secret first\n${current}\n\n${previous}\n`);
  const { sink, gateway } = await startStack(t, { config: { security: { signCallbacks: true, secretMountPath: dir } } });
  const before = nowSeconds();

  const json = JSON.stringify({ result: 'ok', text: 'ünïcödé ✓ 😀' });
  const jsonId = await post(`${gateway.url}/async-function/work`, json, { 'content-type': 'application/json', 'x-callback-url': sink.url });
  const binary = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28]), randomBytes(64 * 1024)]);
  const binaryId = await post(`${gateway.url}/async-function/work`, binary, { 'content-type': 'application/octet-stream', 'x-callback-url': sink.url });

  const jsonCallback = await sink.waitForCallId(jsonId);
  const binaryCallback = await sink.waitForCallId(binaryId);
  const after = nowSeconds();

  t.equal(jsonCallback.body.toString(), json, 'the JSON result arrives as the function sent it');
  for (const secret of [current, previous]) {
    t.same(new Webhook(secret).verify(jsonCallback.body, headersOf(jsonCallback)), JSON.parse(json), 'standardwebhooks verifies the JSON callback');
    t.equal(verifyCallback(jsonCallback.body, jsonCallback.headers, secret), true, 'and so does the README snippet');
  }

  t.ok(binaryCallback.body.equals(binary), 'the binary result arrives byte for byte');
  t.not(Buffer.from(binaryCallback.body.toString('utf8')).equals(binaryCallback.body), 'and is not valid UTF-8');
  for (const secret of [current, previous]) {
    t.equal(verifyCallback(binaryCallback.body, binaryCallback.headers, secret), true, 'the README snippet verifies the binary callback');
  }

  for (const [callback, callId] of [
    [jsonCallback, jsonId],
    [binaryCallback, binaryId],
  ] as const) {
    t.equal(callback.headers['webhook-id'], callId, 'webhook-id is the call id');
    const timestamp = Number(callback.headers['webhook-timestamp']);
    t.ok(timestamp >= before && timestamp <= after, 'webhook-timestamp is the time of the delivery, unix seconds');
    t.equal(String(callback.headers['webhook-signature']).split(' ').length, 2, 'one signature per secret');
  }
  t.equal(verifyCallback(binaryCallback.body, binaryCallback.headers, newSecret()), false, 'an unknown secret does not verify');
});

t.test('a durable callback retry is signed afresh: same webhook-id, a later timestamp, a new valid signature', async (t) => {
  const secret = newSecret();
  const dir = await secretDir(t, `${secret}\n`);
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  // The worker's direct attempt and the first durable one fail; the next waits 1.1 s in JetStream
  // (initial wait × 2, capped), long enough for the clock to pass a whole second.
  const sink = await startCallbackSink(t, (n) => (n <= 2 ? 500 : 200));
  const resolver = staticResolver({ work: { url: fn.url } }, 'openfaas-fn');
  const config = configFor(nats.url, {
    callback: { initialWaitMs: 600, maxWaitMs: 1_100, maxAttempts: 5 },
    security: { signCallbacks: true, secretMountPath: dir },
  });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);

  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => '{"attempts":"several"}');
  const attempts = await sink.waitFor(3);
  t.equal(fn.requests.length, 1, 'the function ran once');
  t.same(
    attempts.map((a) => a.headers['webhook-id']),
    [callId, callId, callId],
    'one webhook-id across attempts',
  );
  t.same(
    attempts.map((a) => a.headers['x-retry']),
    ['0', '0', '0'],
    'each attempt delivers the same result',
  );
  for (const attempt of attempts) {
    t.same(new Webhook(secret).verify(attempt.body, headersOf(attempt)), { attempts: 'several' }, 'each attempt verifies');
  }
  const [first, , last] = attempts.map((a) => a.headers);
  t.ok(Number(last!['webhook-timestamp']) > Number(first!['webhook-timestamp']), 'the retry carries the time it was made');
  t.not(last!['webhook-signature'], first!['webhook-signature'], 'and a new signature');
});

t.test('worker startup stops with a clear ConfigError when the signing secret is missing, empty or malformed', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const resolver = staticResolver({ work: { url: fn.url } }, 'openfaas-fn');
  const secret = newSecret();
  const cases: Array<[string, string | undefined, RegExp]> = [
    ['missing', undefined, /callback_signing: secret file .*callback-signing-secret does not exist/],
    ['empty', '\n  \n', /callback_signing: secret file .*callback-signing-secret is empty/],
    ['only comments', '# nothing yet\n', /callback_signing: secret file .*callback-signing-secret has no values/],
    ['malformed', `${secret}\n${secret.slice('whsec_'.length)}\n`, /callback_signing: .*callback-signing-secret: secret 2 of 2 does not start with "whsec_"/],
    ['too short', `whsec_${randomBytes(16).toString('base64')}\n`, /secret 1 of 1 decodes to 16 bytes/],
  ];
  for (const [what, text, message] of cases) {
    const dir = await secretDir(t, text);
    const config = configFor(nats.url, { security: { signCallbacks: true, secretMountPath: dir } });
    const err = await startTestWorker(t, config, resolver).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, ConfigError, what);
    t.match((err as Error).message, message, what);
    t.notOk((err as Error).message.includes(secret.slice('whsec_'.length, 30)), `${what}: no secret in the message`);
  }
});

t.test('`asyncfn worker` exits 1 and says why when callback_signing is on without its secret file', async (t) => {
  const nats = await startNatsServer(t);
  const dir = await secretDir(t);
  const child = spawn(process.execPath, [...asyncfnNodeArgs(), 'worker'], {
    cwd: REPO_ROOT,
    env: { ...process.env, NATS_URL: nats.url, callback_signing: 'true', secret_mount_path: dir, worker_port: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.resume();
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 1);
  t.match(stderr, `asyncfn: invalid configuration:\n  - callback_signing: secret file ${join(dir, SIGNING_SECRET_FILE)} does not exist`);
});

t.test('signing secrets appear in no log line and no worker HTTP output, even with debug logs', async (t) => {
  const secrets = [newSecret(), newSecret()];
  const dir = await secretDir(t, secrets.join('\n'));
  const stack = await startProcessStack(t);
  const worker = await spawnAsyncfn(t, 'worker', {
    ...stack.workerEnv,
    callback_signing: 'true',
    secret_mount_path: dir,
    log_level: 'debug',
    write_debug: 'true',
  });
  t.match(
    worker.logs.find((l) => l.msg === 'callbacks are signed (Standard Webhooks)'),
    { signingSecrets: 2 },
    'the worker says how many secrets sign, not which',
  );
  const [callId] = await enqueueMany(stack.gateway.url, 'work', 1, stack.sink.url, () => 'logged');
  const callback = await stack.sink.waitForCallId(callId!);
  t.equal(verifyCallback(callback.body, callback.headers, secrets[1]!), true, 'the spawned worker signs with the file');
  await worker.waitForLog((l) => l.callId === callId && /callback/i.test(l.msg), 'a log line about the callback');

  const base = worker.logs.find((l) => l.msg === 'worker health and metrics server listening')?.url as string;
  const outputs = [JSON.stringify(worker.logs), JSON.stringify(callback.headers)];
  for (const path of ['/metrics', '/healthz', '/readyz']) {
    const res = await request(`${base}${path}`);
    outputs.push(await res.body.text());
  }
  for (const secret of secrets) {
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    for (const form of [secret.slice('whsec_'.length), key.toString('hex'), key.toString('base64url')]) {
      t.notOk(
        outputs.some((o) => o.includes(form)),
        'no form of a secret is in the logs, headers or HTTP output',
      );
    }
  }
});
