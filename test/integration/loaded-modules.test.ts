import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { spawnAsyncfn, writeFunctionsFile } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { pathToFileURL } from 'node:url';
import { modulesNodeArgs, REPO_ROOT } from '../helpers/repo-root.js';

/**
 * What a process never runs costs no memory: `asyncfn worker` loads neither the gateway nor the
 * sample functions nor OpenTelemetry's SDK unless tracing is configured, and `asyncfn gateway`
 * not the worker. The modules are recorded by a `--import` hook in the child (loaded-modules.mjs).
 */

const HOOK = pathToFileURL(join(REPO_ROOT, 'test/helpers/loaded-modules.mjs')).href;
const OTEL_VARIABLES = ['OTEL_TRACES_EXPORTER', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_SDK_DISABLED'];

/** Runs `asyncfn <command>` until ready and returns every module it has loaded (teardown stops it). */
async function modulesLoadedBy(t: Test, command: 'worker' | 'gateway', env: Record<string, string>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-modules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'modules.txt');
  const nats = await startNatsServer(t);
  const functionsFile = await writeFunctionsFile(t, { work: 'http://127.0.0.1:9' });
  const child = await spawnAsyncfn(
    t,
    command,
    {
      NATS_URL: nats.url,
      functions_file: functionsFile,
      LOADED_MODULES_FILE: file,
      // Added to what the test runner already passes to its children.
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${HOOK}`.trim(),
      ...env,
    },
    // The modules, one file each, so that the hook can name them; the bundle splits its chunks
    // along the same imports (deploy/bundle.mjs), and test/integration/bundle.test.ts runs it.
    { unset: OTEL_VARIABLES.filter((name) => !(name in env)), program: modulesNodeArgs() },
  );
  // Its own lines: the child process that read its settings recorded its modules here too.
  const prefix = `${child.child.pid} `;
  const read = async (): Promise<string[]> =>
    (await readFile(file, 'utf8').catch(() => '')).split('\n').flatMap((line) => (line.startsWith(prefix) ? [line.slice(prefix.length)] : []));
  child.child.kill('SIGUSR2');
  await eventually(async () => (await read()).includes('# end'), `${command} to list its CommonJS modules`);
  return [...new Set((await read()).filter((line) => line !== '# end'))];
}

function loaded(modules: readonly string[], pattern: RegExp): string[] {
  return modules.filter((m) => pattern.test(m));
}

/** What reads and checks the settings and the functions file, once, at start. */
const VALIDATORS = /\/node_modules\/(zod|yaml)\/|\/src\/config\/(load|schema|variables)\.(ts|js)$|\/src\/functions\/static-file\.(ts|js)$/;

const SDK = /\/node_modules\/@opentelemetry\/(sdk-|core\/|resources\/|exporter-)/;

t.test('a worker without tracing loads no OpenTelemetry SDK, no gateway, no fastify, no samples, no pino-pretty, no validator', async (t) => {
  const modules = await modulesLoadedBy(t, 'worker', {});
  t.ok(loaded(modules, /\/src\/worker\/worker\.(ts|js)$/).length === 1, 'the hook saw the worker itself');
  t.ok(loaded(modules, /\/node_modules\/@nats-io\/jetstream\//).length > 0, 'and its ES module dependencies');
  t.ok(loaded(modules, /\/node_modules\/pino\//).length > 0, 'and CommonJS ones (pino)');
  t.same(loaded(modules, SDK), [], 'no OpenTelemetry SDK package');
  t.same(loaded(modules, /\/node_modules\/(fastify|@fastify\/[^/]+|find-my-way|avvio)\//), [], 'no fastify');
  t.same(loaded(modules, /\/node_modules\/(figlet|pino-pretty)\//), [], 'no figlet, no pino-pretty');
  t.same(loaded(modules, /\/src\/(gateway|samples|cli\/dlq|dead-letters)\//), [], 'no gateway, sample or dead-letter module');
  t.same(loaded(modules, /\/src\/cli\/(gateway-processes|up|status|queues|cancel)\.(ts|js)$/), [], 'no other command');
  // Its function is plain http: asyncfn's own HTTP/1.1 client calls it, and undici's Agent (https,
  // streamed bodies) is loaded on its first request (src/http/undici-parts.ts): ~1 MiB of idle RSS.
  t.ok(loaded(modules, /\/src\/http\/h1\/agent\.(ts|js)$/).length === 1, "asyncfn's HTTP/1.1 client");
  t.same(loaded(modules, /\/node_modules\/undici\//), [], 'no undici module');
  // RxJS's index loads all of its 223 modules (~4 MiB more than the ones actors/rx.ts names).
  t.ok(loaded(modules, /\/node_modules\/rxjs\/dist\/cjs\/internal\/Observable\.js$/).length > 0, "RxJS's Observable");
  t.same(loaded(modules, /\/node_modules\/rxjs\/dist\/cjs\/(index\.js|internal\/ajax\/|internal\/testing\/)/), [], "not RxJS's index");
  // Its settings were read by a child process (src/cli/settings-apart.ts): ~5 MiB of heap less.
  t.same(loaded(modules, VALIDATORS), [], 'no zod, no yaml, no config schema');
});

t.test('a worker with an OTLP endpoint loads the SDK', async (t) => {
  // Nothing listens there; an idle worker makes no span to export.
  const modules = await modulesLoadedBy(t, 'worker', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' });
  t.ok(loaded(modules, /\/node_modules\/@opentelemetry\/sdk-trace-base\//).length > 0, 'sdk-trace-base');
  t.ok(loaded(modules, /\/node_modules\/@opentelemetry\/sdk-node\//).length > 0, 'sdk-node');
  t.ok(loaded(modules, /\/node_modules\/@opentelemetry\/exporter-trace-otlp-http\//).length > 0, 'the OTLP exporter');
});

t.test('a gateway loads no worker machinery, no samples, no OpenTelemetry SDK, no RxJS, no schema compiler and no validator', async (t) => {
  const modules = await modulesLoadedBy(t, 'gateway', {});
  t.ok(loaded(modules, /\/node_modules\/fastify\//).length > 0, 'the hook saw fastify');
  t.same(loaded(modules, SDK), [], 'no OpenTelemetry SDK package');
  t.same(loaded(modules, /\/node_modules\/(xstate|figlet|pino-pretty)\//), [], 'no xstate, figlet or pino-pretty');
  // actors/retry.policy.ts is read by the config (retry_http_codes); the machines are the worker's.
  t.same(loaded(modules, /\/actors\/(invocation\.machine|queue\.supervisor|ack-extender)\.(ts|js)$/), [], 'no invocation machine or supervisor');
  t.same(loaded(modules, /\/src\/(samples|cli\/dlq)\//), [], 'no sample or dlq module');
  t.same(loaded(modules, /\/src\/(worker\/|cli\/(up|status|queues)\.(ts|js)$)/), [], 'no worker module, no other command');
  // What the worker's pulls need (RxJS, ~10 MiB of RSS) and what routes with schemas would (ajv, ~8 MiB).
  t.same(loaded(modules, /\/node_modules\/(rxjs|ajv|ajv-formats|@fastify\/ajv-compiler)\//), [], 'no RxJS, no schema compiler');
  // The sync route calls through undici's Agent and request API alone (src/http/undici-parts.ts).
  t.same(loaded(modules, /\/node_modules\/undici\/(index\.js|lib\/web\/)/), [], "not undici's index, fetch or WebSocket");
  t.same(loaded(modules, VALIDATORS), [], 'no zod, no yaml, no config schema: its settings were read by a child process');
});
