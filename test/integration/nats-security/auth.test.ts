import { spawn } from 'node:child_process';
import { nkeys } from '@nats-io/nats-core';
import { pino, type Logger } from 'pino';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { startGateway } from '../../../src/gateway/start.js';
import { startWorker } from '../../../src/worker/index.js';
import { runDlqCommand } from '../../../src/cli/dlq/index.js';
import { NatsConnectError } from '../../../src/nats/connection.js';
import { configFor, REPO_ROOT, resolverFor, startStack, startTestGateway, type Stack } from '../../helpers/asyncfn.js';
import { startNatsServer, writeSecretFiles } from '../../helpers/nats-server.js';
import { asyncfnNodeArgs } from '../../helpers/repo-root.js';

const PASSWORD = 'c0rrect-h0rse-battery';
const WRONG = 'tr0ub4dor-and-3';
const USER_AUTH = `authorization { user: asyncfn, password: "${PASSWORD}" }`;

/** A logger that keeps every line it writes, to check what reaches the logs. */
function capturingLogger(): { logger: Logger; text: () => string; lines: () => Array<Record<string, unknown>> } {
  const written: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void written.push(line) });
  return { logger, text: () => written.join(''), lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/** POSTs an async invocation of "work" and waits for its callback. */
async function roundTrip(t: Test, stack: Pick<Stack, 'gateway' | 'sink'>, body: string): Promise<void> {
  const res = await request(`${stack.gateway.url}/async-function/work`, { method: 'POST', body, headers: { 'x-callback-url': stack.sink.url } });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  const callback = await stack.sink.waitForCallId(String(res.headers['x-call-id']));
  t.equal(callback.headers['x-function-status'], '200');
  t.equal(callback.body.toString(), body, 'the function ran and its answer came back');
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a failure'),
    (err: unknown) => err,
  );
}

t.test('user and password: a gateway and a worker with the credentials complete an async invocation', async (t) => {
  const secrets = await writeSecretFiles(t, { password: PASSWORD });
  const stack = await startStack(t, { natsConfig: USER_AUTH, config: { nats: { auth: { user: 'asyncfn', passwordFile: secrets.password } } } });
  await roundTrip(t, stack, 'hello over an authenticated connection');
});

t.test('user and password: a wrong password stops the gateway and the worker, naming user and URL, not the password', async (t) => {
  const nats = await startNatsServer(t, USER_AUTH);
  const secrets = await writeSecretFiles(t, { password: WRONG });
  const config = configFor(nats.url, { nats: { auth: { user: 'asyncfn', passwordFile: secrets.password } } });
  const resolver = resolverFor({ work: 'http://127.0.0.1:1' });
  for (const [name, start] of [
    ['gateway', startGateway],
    ['worker', startWorker],
  ] as const) {
    const logs = capturingLogger();
    const err = await failure(start(config, { resolver, logger: logs.logger }));
    t.type(err, NatsConnectError, name);
    t.equal((err as NatsConnectError).reason, 'auth');
    t.equal((err as Error).message, `NATS authorization failed for user asyncfn at ${nats.url}`, `${name}: the message names the problem`);
    t.notOk(logs.text().includes(WRONG) || logs.text().includes(PASSWORD), `${name}: no password in the logs`);
  }
});

t.test('a server that requires credentials, and none configured: the error says which settings to use', async (t) => {
  const nats = await startNatsServer(t, USER_AUTH);
  const err = await failure(startGateway(configFor(nats.url), { resolver: resolverFor({}), logger: capturingLogger().logger }));
  t.type(err, NatsConnectError);
  t.match((err as Error).message, `NATS authorization failed at ${nats.url}: the server requires credentials and none are configured (set nats_creds_file`);
});

t.test('token: the right one is accepted, a wrong one is named by its file', async (t) => {
  const nats = await startNatsServer(t, 'authorization { token: "t0ken-0f-trust" }');
  const secrets = await writeSecretFiles(t, { good: 't0ken-0f-trust\n', bad: 'n0t-the-t0ken' });
  const fn = resolverFor({});
  const gateway = await startTestGateway(t, configFor(nats.url, { nats: { auth: { tokenFile: secrets.good } } }), fn);
  const res = await request(`${gateway.url}/healthz`);
  t.equal(res.statusCode, 200, 'connected with the token (its trailing newline trimmed)');
  await res.body.dump();

  const err = await failure(startGateway(configFor(nats.url, { nats: { auth: { tokenFile: secrets.bad } } }), { resolver: fn, logger: capturingLogger().logger }));
  t.equal((err as Error).message, `NATS authorization failed for the token in nats_token_file ${secrets.bad} at ${nats.url}`);
});

t.test('NKEY: a user seed the server lists is accepted and publishes; an unknown one is refused by its public key', async (t) => {
  const user = nkeys.createUser();
  const stranger = nkeys.createUser();
  const decode = (seed: Uint8Array): string => new TextDecoder().decode(seed);
  const stack = await startStack(t, {
    natsConfig: `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }`,
    config: { nats: { auth: { nkeySeedFile: (await writeSecretFiles(t, { seed: decode(user.getSeed()) })).seed } } },
  });
  await roundTrip(t, stack, 'signed with an nkey');

  const strangerSeed = (await writeSecretFiles(t, { seed: decode(stranger.getSeed()) })).seed;
  const logs = capturingLogger();
  const err = await failure(
    startWorker(configFor(stack.nats.url, { nats: { auth: { nkeySeedFile: strangerSeed } } }), { resolver: stack.resolver, logger: logs.logger }),
  );
  t.equal((err as Error).message, `NATS authorization failed for NKEY ${stranger.getPublicKey()} (nats_nkey_seed_file ${strangerSeed}) at ${stack.nats.url}`);
  t.notOk(logs.text().includes(decode(stranger.getSeed())), 'the seed is not logged');
});

t.test('credentials in NATS_URL work, and every log line shows the URL masked', async (t) => {
  const nats = await startNatsServer(t, USER_AUTH);
  const url = nats.url.replace('nats://', `nats://asyncfn:${encodeURIComponent(PASSWORD)}@`);
  const masked = nats.url.replace('nats://', 'nats://asyncfn:xxxxx@');
  const logs = capturingLogger();
  const gateway = await startGateway(configFor(url), { resolver: resolverFor({}), logger: logs.logger });
  t.teardown(() => gateway.close());
  const lines = logs.lines();
  t.equal(lines.find((l) => l.msg === 'connecting to NATS')?.url, masked);
  t.equal(lines.find((l) => l.msg === 'gateway listening')?.nats, masked);
  t.notOk(logs.text().includes(PASSWORD), 'the password is in no log line');
});

t.test('asyncfn dlq connects with the credentials; a wrong password gets one clear line', async (t) => {
  const nats = await startNatsServer(t, USER_AUTH);
  const secrets = await writeSecretFiles(t, { good: PASSWORD, bad: WRONG });
  const run = async (passwordFile: string) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runDlqCommand(['list'], { natsUrl: nats.url, natsAuth: { user: 'asyncfn', passwordFile }, out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
  };
  const good = await run(secrets.good);
  t.equal(good.code, 0, good.err.join('\n'));
  const bad = await run(secrets.bad);
  t.equal(bad.code, 1);
  t.same(bad.err, [`asyncfn dlq: NATS authorization failed for user asyncfn at ${nats.url}`]);
});

t.test('the asyncfn command exits 1 with the reason on stderr, and no password anywhere in its output', async (t) => {
  const nats = await startNatsServer(t, USER_AUTH);
  const secrets = await writeSecretFiles(t, { bad: WRONG });
  const child = spawn(process.execPath, [...asyncfnNodeArgs(), 'gateway'], {
    cwd: REPO_ROOT,
    env: { ...process.env, NATS_URL: nats.url, nats_user: 'asyncfn', nats_password_file: secrets.bad, gateway_port: '0', log_level: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 1);
  t.equal(stderr.trim(), `asyncfn: NATS authorization failed for user asyncfn at ${nats.url}`);
  t.notOk((output + stderr).includes(WRONG), 'the password file content is not printed');
});
