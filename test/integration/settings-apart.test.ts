import { spawn } from 'node:child_process';
import { once } from 'node:events';
import t from 'tap';
import { readSettingsApart } from '../../src/cli/settings-apart.js';
import { readSettings, type SettingsRequest } from '../../src/cli/settings.js';
import { ConfigError } from '../../src/errors.js';
import { writeFunctionsFile } from '../helpers/asyncfn.js';
import { asyncfnNodeArgs } from '../helpers/repo-root.js';

/**
 * A gateway or a worker reads its settings in a child process (src/cli/settings-apart.ts), so the
 * validators never load into it. What it gets back must be what reading them in the process gives:
 * the same config, frozen as loadConfig freezes it, the same warnings, the same functions, and the
 * same errors.
 */

const REQUEST: SettingsRequest = { load: { stdoutIsTty: false, tracing: { defaultServiceName: 'asyncfn-worker' } }, functionsFile: true };

t.test('the same settings as read in the process: config, warnings and the functions file', async (t) => {
  const file = await writeFunctionsFile(t, { echo: 'http://127.0.0.1:9000/echo', 'slow.other': 'http://127.0.0.1:9001' });
  const env = { NATS_URL: 'nats://127.0.0.1:4222', functions_file: file, max_inflight: '7', ack_wait: '90s', max_inflgiht: '3' };
  const apart = await readSettingsApart(REQUEST, env);
  const here = await readSettings(REQUEST, env);
  t.same(apart, here);
  t.equal(apart.config.worker.maxInflight, 7);
  t.match(apart.warnings.join('\n'), /max_inflgiht/, 'the unknown variable is warned about');
  t.same(
    apart.functions?.functions.map((fn) => `${fn.name}.${fn.namespace} ${fn.url}`),
    ['echo.openfaas-fn http://127.0.0.1:9000/echo', 'slow.other http://127.0.0.1:9001/'],
  );
  t.equal(apart.functions?.unlisted, 'not-found', 'unlisted functions are not found unless the file says otherwise');
  t.ok(Object.isFrozen(apart.config) && Object.isFrozen(apart.config.worker) && Object.isFrozen(apart.config.nats), 'frozen, nested slices too');
});

t.test('no functions are read unless asked for, or unless the functions come from a file', async (t) => {
  const file = await writeFunctionsFile(t, { echo: 'http://127.0.0.1:9000/echo' });
  t.equal((await readSettingsApart({ ...REQUEST, functionsFile: false }, { functions_file: file })).functions, undefined);
  t.equal((await readSettingsApart(REQUEST, { function_url_template: 'http://{{name}}.{{namespace}}:8080' })).functions, undefined);
});

t.test('bad variables and a bad functions file: the same ConfigError, every problem listed', async (t) => {
  const file = await writeFunctionsFile(t, { 'Bad Name': 'ftp://x' });
  const env = { max_inflight: 'many', ack_wait: 'soon', functions_file: file };
  const here = await readSettings(REQUEST, env).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(here instanceof ConfigError, 'read in the process: a ConfigError');
  const apart = await readSettingsApart(REQUEST, env).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(apart instanceof ConfigError, 'read in a child process: a ConfigError too');
  t.same((apart as ConfigError).problems, (here as ConfigError).problems);
  t.match((apart as ConfigError).problems.join('\n'), /max_inflight[\s\S]*ack_wait/);

  const badFile = await readSettingsApart(REQUEST, { functions_file: file }).catch((err: unknown) => err);
  t.ok(badFile instanceof ConfigError, 'the functions file is checked in the child process');
  t.match((badFile as ConfigError).problems.join('\n'), /Bad Name/);
});

t.test('a config file that cannot be read: the error as the CLI prints it', async (t) => {
  const err = await readSettingsApart({ ...REQUEST, configPath: '/nonexistent/asyncfn.yaml' }, {}).catch((e: unknown) => e);
  t.ok(err instanceof Error);
  t.match((err as Error).stack, /ENOENT[\s\S]*\/nonexistent\/asyncfn\.yaml/);
});

t.test("something else on the child's stdout: a clear error, not a garbled config", async (t) => {
  // A preloaded module that prints: the answer is no longer one V8-serialized message.
  const env = { NODE_OPTIONS: '--import=data:text/javascript,process.stdout.write(String(1))' };
  const err = await readSettingsApart(REQUEST, env).catch((e: unknown) => e);
  t.ok(err instanceof Error);
  t.match((err as Error).message, /could not read the settings: the answer of their child process .* is not one message/);
});

t.test('asyncfn worker with a bad variable exits 1 and names it, before connecting to anything', async (t) => {
  const child = spawn(process.execPath, [...asyncfnNodeArgs(), 'worker'], {
    env: { PATH: process.env.PATH, NATS_URL: 'nats://127.0.0.1:1', max_inflight: 'many' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  t.equal(code, 1, stderr);
  t.match(stderr, /^asyncfn: [\s\S]*max_inflight/);
});
