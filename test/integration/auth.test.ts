import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { startGateway } from '../../src/gateway/start.js';
import type { Config, DeepPartial } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { configFor, REPO_ROOT, resolverFor, startStack, type Stack } from '../helpers/asyncfn.js';
import { asyncfnNodeArgs } from '../helpers/repo-root.js';

const USER = 'admin';
const PASSWORD = 'correct-horse-battery';
/** Same length as PASSWORD, last byte different. */
const WRONG_PASSWORD = 'correct-horse-batterx';
const TOKENS = ['token-old-0123456789', 'token-new-9876543210'];

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const ADMIN = basic(USER, PASSWORD);

async function secretsDir(t: Test, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

/** A stack whose gateway reads its secrets from a fresh directory holding the pair and two tokens. */
async function authStack(t: Test, security: DeepPartial<Config['security']>): Promise<Stack> {
  const dir = await secretsDir(t, {
    'basic-auth-user': `${USER}\n`,
    'basic-auth-password': `${PASSWORD}\n`,
    'invoke-tokens': `${TOKENS.join('\n')}\n`,
  });
  // Callbacks go to a loopback sink.
  return startStack(t, { config: { security: { secretMountPath: dir, callbackAllow: ['127.0.0.0/8'], ...security } } });
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

async function call(url: string, method: 'GET' | 'POST' | 'DELETE' | 'HEAD', authorization?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(url, { method, headers: authorization === undefined ? headers : { ...headers, authorization } });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** A 401 in the gateway's error format, with the challenge for `scheme`. */
function expect401(t: Test, answer: Answer, challenge: string, reason: RegExp, what: string): void {
  t.equal(answer.status, 401, `${what}: 401`);
  t.equal(answer.headers['www-authenticate'], challenge, `${what}: WWW-Authenticate ${challenge}`);
  t.equal(answer.headers['x-asyncfn-error'], 'ASYNCFN_ERR_UNAUTHORIZED');
  t.match(answer.headers['content-type'], /^text\/plain/);
  t.match(answer.text, /^[^\n]+\n$/, `${what}: one line`);
  t.match(answer.text, reason, what);
}

t.test('basic_auth protects /system/* and the status/cancel family; probes, metrics and invocations stay open', async (t) => {
  const { gateway, fn, sink } = await authStack(t, { basicAuth: true });
  const url = (path: string) => `${gateway.url}${path}`;
  const challenge = 'Basic realm="asyncfn"';

  expect401(t, await call(url('/system/functions'), 'GET'), challenge, /authentication required: send Basic credentials \(basic_auth\)/, 'no credentials');
  expect401(t, await call(url('/system/functions'), 'GET', basic(USER, WRONG_PASSWORD)), challenge, /^invalid credentials$/m, 'wrong password, same length');
  expect401(t, await call(url('/system/functions'), 'GET', basic('admim', PASSWORD)), challenge, /^invalid credentials$/m, 'wrong user, same length');
  expect401(t, await call(url('/system/functions'), 'GET', `Bearer ${TOKENS[0]}`), challenge, /^invalid credentials$/m, 'another scheme');
  const listed = await call(url('/system/functions'), 'GET', ADMIN);
  t.equal(listed.status, 200, 'the right pair lists functions');
  t.match(JSON.parse(listed.text), [{ name: 'work' }]);

  // Cancel (DELETE) and status (GET, a route to come) share /async-function/<call-id>.
  expect401(t, await call(url('/async-function/some-call-id'), 'DELETE'), challenge, /authentication required/, 'cancel without credentials');
  const cancel = await call(url('/async-function/some-call-id'), 'DELETE', ADMIN);
  t.equal(cancel.status, 404, 'with credentials, cancel reaches its route');
  t.equal(cancel.headers['x-asyncfn-error'], 'ASYNCFN_ERR_INVOCATION_NOT_FOUND');
  expect401(t, await call(url('/async-function/some-call-id'), 'GET'), challenge, /authentication required/, 'status without credentials');
  t.not((await call(url('/async-function/some-call-id'), 'GET', ADMIN)).status, 401, 'with credentials, status reaches its route');

  // Tricks on the path route where the router routes them, or nowhere: never around the check.
  for (const path of ['//system/functions', '/system/functions/', '/%73ystem/functions', '/system/functions?x=/healthz', '/SYSTEM/functions']) {
    const answer = await call(url(path), 'GET');
    t.ok(answer.status === 401 || answer.status === 404, `${path}: ${answer.status}, never served without credentials`);
  }

  for (const path of ['/healthz', '/readyz', '/metrics']) {
    t.equal((await call(url(path), 'GET')).status, 200, `${path} is open (probes, Prometheus)`);
    t.equal((await call(url(path), 'HEAD')).status, 200, `HEAD ${path} is open`);
  }
  t.equal((await call(url('/nowhere'), 'GET')).status, 404, 'an unknown route is a 404, not a 401');

  // invoke_auth=none: invocations are open, and a caller's Authorization is the function's business.
  const sync = await call(url('/function/work'), 'POST', 'Bearer for-the-function', { 'content-type': 'text/plain' });
  t.equal(sync.status, 200);
  t.equal(fn.requests.at(-1)?.headers.authorization, 'Bearer for-the-function', 'sync: Authorization forwarded');
  const queued = await call(url('/async-function/work'), 'POST', 'Bearer for-the-function', { 'x-callback-url': sink.url });
  t.equal(queued.status, 202);
  await sink.waitForCallId(String(queued.headers['x-call-id']));
  t.equal(fn.requests.at(-1)?.headers.authorization, 'Bearer for-the-function', 'async: Authorization forwarded');
});

t.test('invoke_auth=basic protects /function/* and POST /async-function/*, and keeps the credential from the function', async (t) => {
  const { gateway, fn, sink } = await authStack(t, { invokeAuth: 'basic' });
  const url = (path: string) => `${gateway.url}${path}`;
  const challenge = 'Basic realm="asyncfn"';

  expect401(t, await call(url('/function/work'), 'GET'), challenge, /send Basic credentials \(invoke_auth=basic\)/, 'sync without credentials');
  expect401(t, await call(url('/function/work'), 'GET', basic(USER, WRONG_PASSWORD)), challenge, /invalid credentials/, 'sync, wrong password');
  expect401(t, await call(url('/async-function/work'), 'POST'), challenge, /authentication required/, 'async without credentials');
  expect401(t, await call(url('/async-function/work'), 'POST', basic(USER, WRONG_PASSWORD)), challenge, /invalid credentials/, 'async, wrong password');
  t.equal(fn.requests.length, 0, 'refused calls never reach the function');

  const sync = await call(url('/function/work/sub?q=1'), 'POST', ADMIN, { 'content-type': 'text/plain', 'x-keep': 'me' });
  t.equal(sync.status, 200);
  t.equal(fn.requests[0]?.headers.authorization, undefined, "sync: asyncfn's credential is not forwarded");
  t.equal(fn.requests[0]?.headers['x-keep'], 'me', 'other headers are');

  const queued = await call(url('/async-function/work'), 'POST', ADMIN, { 'x-callback-url': sink.url, 'x-keep': 'me' });
  t.equal(queued.status, 202);
  await sink.waitForCallId(String(queued.headers['x-call-id']));
  t.equal(fn.requests[1]?.headers.authorization, undefined, "async: asyncfn's credential is not stored in the envelope");
  t.equal(fn.requests[1]?.headers['x-keep'], 'me');

  // basic_auth is off: /system and cancel stay open, as in OpenFaaS.
  t.equal((await call(url('/system/functions'), 'GET')).status, 200, '/system/* open');
  t.equal((await call(url('/async-function/nope'), 'DELETE')).status, 404, 'cancel open');

  // A refused invocation is not an invocation of the function in the OpenFaaS metrics.
  const metrics = (await call(url('/metrics'), 'GET')).text;
  t.notMatch(metrics, /gateway_function_invocation_total\{[^}]*code="401"/, 'no invocation counted with code 401');
  t.match(metrics, /gateway_function_invocation_total\{[^}]*code="200"/, 'the accepted sync call is counted');
});

t.test('invoke_auth=bearer accepts every token in invoke-tokens (rotation), nothing else', async (t) => {
  const { gateway, fn, sink } = await authStack(t, { invokeAuth: 'bearer' });
  const url = (path: string) => `${gateway.url}${path}`;

  expect401(t, await call(url('/function/work'), 'GET'), 'Bearer realm="asyncfn"', /send Bearer credentials \(invoke_auth=bearer\)/, 'no token');
  const wrong = `Bearer ${TOKENS[1]!.slice(0, -1)}1`;
  expect401(
    t,
    await call(url('/function/work'), 'GET', wrong),
    'Bearer realm="asyncfn", error="invalid_token"',
    /invalid credentials/,
    'a wrong token of the same length',
  );
  expect401(t, await call(url('/async-function/work'), 'POST', ADMIN), 'Bearer realm="asyncfn", error="invalid_token"', /invalid credentials/, 'basic credentials');

  for (const [i, token] of TOKENS.entries()) {
    const sync = await call(url('/function/work'), 'GET', `Bearer ${token}`);
    t.equal(sync.status, 200, `token ${i} works for a sync call`);
    const queued = await call(url('/async-function/work'), 'POST', `Bearer ${token}`, { 'x-callback-url': sink.url });
    t.equal(queued.status, 202, `token ${i} works for an async call`);
    await sink.waitForCallId(String(queued.headers['x-call-id']));
  }
  t.equal(fn.requests.length, 4);
  t.same(
    fn.requests.map((r) => r.headers.authorization),
    [undefined, undefined, undefined, undefined],
    'no token ever reaches the function',
  );
});

t.test('a missing secret file stops the gateway before it connects, naming the file and the setting', async (t) => {
  const empty = await secretsDir(t, { 'basic-auth-user': 'admin\n' });
  // Nothing listens on port 1: the error must come from the secrets, before any connection attempt.
  const config = configFor('nats://127.0.0.1:1', { security: { secretMountPath: empty, basicAuth: true, invokeAuth: 'bearer' } });
  const err = await startGateway(config, { resolver: resolverFor({}), logger: createLogger(config.log) }).catch((e: unknown) => e);
  t.type(err, ConfigError);
  t.equal(
    (err as Error).message,
    'invalid configuration:\n' +
      `  - basic_auth=true: secret file ${join(empty, 'basic-auth-password')} does not exist\n` +
      `  - invoke_auth=bearer: secret file ${join(empty, 'invoke-tokens')} does not exist`,
  );
});

t.test('`asyncfn gateway` exits with the same message when a secret is missing', async (t) => {
  const empty = await secretsDir(t, {});
  const run = promisify(execFile)(process.execPath, [...asyncfnNodeArgs(), 'gateway'], {
    cwd: REPO_ROOT,
    env: { ...process.env, NATS_URL: 'nats://127.0.0.1:1', basic_auth: 'true', secret_mount_path: empty, gateway_port: '0', log_level: 'silent' },
  });
  const err = (await run.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: number; stderr?: string } | undefined;
  t.ok(err, 'the command fails');
  t.equal(err?.code, 1, 'exit code 1');
  t.match(err?.stderr, `asyncfn: invalid configuration:\n  - basic_auth=true: secret file ${join(empty, 'basic-auth-user')} does not exist`);
});
