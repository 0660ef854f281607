import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import type { Test } from 'tap';
import { startGateway, type RunningGateway } from '../../src/gateway/start.js';
import { startWorker, type RunningWorker } from '../../src/worker/index.js';
import { testConfig, type Config, type DeepPartial } from '../../src/config/index.js';
import type { FunctionResolver } from '../../src/functions/index.js';
import { staticResolver } from '../../src/functions/static-file.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startCallbackSink, startFunctionServer, type CallbackSink, type FunctionServer, type Handler } from './http-servers.js';
import { waitForEvent } from './eventually.js';
import { startNatsServer } from './nats-server.js';
import type { LocalNatsServer } from '../../src/nats/local-server.js';
import { processTree } from './listening-sockets.js';
import { asyncfnNodeArgs, REPO_ROOT } from './repo-root.js';

export { REPO_ROOT } from './repo-root.js';

/**
 * Callback targets tests allow: their callback sinks listen on loopback, which the SSRF guard
 * refuses by default. As a list for configs, and as `callback_allow` for child processes.
 */
export const LOOPBACK_CALLBACK_ALLOW: readonly string[] = ['127.0.0.0/8', '::1'];
export const LOOPBACK_CALLBACK_ALLOW_ENV = LOOPBACK_CALLBACK_ALLOW.join(',');

/** A config for tests: loopback (callbacks included), random gateway port, quiet logs, one attempt unless a test is about retries. */
export function configFor(natsUrl: string, overrides: DeepPartial<Config> = {}): Config {
  return testConfig({
    ...overrides,
    security: { callbackAllow: LOOPBACK_CALLBACK_ALLOW, ...overrides.security },
    retry: { maxAttempts: 1, ...overrides.retry },
    nats: { ...overrides.nats, url: natsUrl },
    gateway: { port: 0, host: '127.0.0.1', ...overrides.gateway },
    worker: { port: 0, host: '127.0.0.1', ...overrides.worker },
    log: { level: 'silent', ...overrides.log },
  });
}

/** A registry with the given functions; each entry is a base URL. */
export function resolverFor(functions: Record<string, string>): FunctionResolver {
  return staticResolver(Object.fromEntries(Object.entries(functions).map(([name, url]) => [name, { url }])), 'openfaas-fn');
}

export async function startTestGateway(t: Test, config: Config, resolver: FunctionResolver): Promise<RunningGateway> {
  const gateway = await startGateway(config, { resolver, logger: createLogger(config.log) });
  t.teardown(() => gateway.close());
  return gateway;
}

export async function startTestWorker(t: Test, config: Config, resolver: FunctionResolver): Promise<RunningWorker> {
  const worker = await startWorker(config, { resolver, logger: createLogger(config.log) });
  let closed = false;
  t.teardown(() => (closed ? undefined : worker.close(0)));
  return {
    url: worker.url,
    close: async (graceMs) => {
      closed = true;
      await worker.close(graceMs);
    },
  };
}

/** Writes a functions file (name → URL) for child processes; removed at teardown. */
export async function writeFunctionsFile(t: Test, functions: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-functions-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'functions.yaml');
  const body = Object.entries(functions)
    .map(([name, url]) => `  ${name}:\n    url: ${url}`)
    .join('\n');
  await writeFile(file, `functions:\n${body}\n`);
  return file;
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** An asyncfn command running as its own process, so a test can kill -9 it. */
export interface AsyncfnProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  /** Every line of stdout as written, log lines or not (JSON.parse would hide a repeated key). */
  readonly stdout: string[];
  waitForLog(predicate: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  kill9(): Promise<void>;
  /**
   * Sends SIGTERM and resolves with the exit code; rejects, naming the last log lines, if the
   * process has not exited within `timeoutMs` (default 60 s).
   */
  terminate(timeoutMs?: number): Promise<number | null>;
}

// `up` starts its gateway last.
const READY: Record<string, string> = { worker: 'worker pulling', gateway: 'gateway listening', up: 'gateway listening' };

export interface SpawnOptions {
  /** Arguments after the command, e.g. ['--host', '0.0.0.0']. */
  readonly args?: readonly string[];
  /** Working directory; default the repository (`up` keeps its data in `<cwd>/.asyncfn`). */
  readonly cwd?: string;
  /** Variables to remove from the inherited environment (and from the helper's own defaults). */
  readonly unset?: readonly string[];
  /** A process group of its own, so that a test can kill the group (`process.kill(-pid)`) as a supervisor does. */
  readonly detached?: boolean;
  /** Node's arguments before the command; default {@link asyncfnNodeArgs} (a bundle: `[path to its main.js]`). */
  readonly program?: readonly string[];
}

/** Spawns `asyncfn <command>` from the TypeScript sources with `env` added, and waits until it is ready. */
export async function spawnAsyncfn(t: Test, command: 'worker' | 'gateway' | 'up', env: Record<string, string>, opts: SpawnOptions = {}): Promise<AsyncfnProcess> {
  const fullEnv: Record<string, string | undefined> = {
    ...process.env,
    log_level: 'info',
    worker_port: '0',
    gateway_port: '0',
    callback_allow: LOOPBACK_CALLBACK_ALLOW_ENV,
    ...env,
  };
  for (const name of opts.unset ?? []) delete fullEnv[name];
  const child = spawn(process.execPath, [...(opts.program ?? asyncfnNodeArgs()), command, ...(opts.args ?? [])], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  const events = new EventEmitter();
  const logs: LogLine[] = [];
  const stdout: string[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  createInterface({ input: child.stdout }).on('line', (text) => {
    stdout.push(text);
    try {
      logs.push(JSON.parse(text) as LogLine);
      events.emit('log');
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.once('exit', () => events.emit('log'));
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // `up`'s nats-server has its own process group (a watchdog stops it when `up` dies): stop
    // `up` gently, and kill what is left of its tree only if that fails.
    const tree = command === 'up' && child.pid !== undefined ? await processTree(child.pid) : [];
    if (command === 'up') {
      child.kill('SIGTERM');
      const giveUp = new AbortController();
      const outcome = await Promise.race([exited.then(() => 'exited'), delay(15_000, 'timeout', { signal: giveUp.signal })]);
      giveUp.abort();
      if (outcome === 'exited') return;
    }
    child.kill('SIGKILL');
    await exited;
    for (const pid of tree.slice(1)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const waitForLog = async (predicate: (line: LogLine) => boolean, what: string, timeoutMs = 20_000): Promise<LogLine> => {
    await waitForEvent(events, 'log', () => logs.some(predicate) || child.exitCode !== null, `${command} to log "${what}"`, timeoutMs);
    const line = logs.find(predicate);
    if (!line) throw new Error(`${command} exited (${child.exitCode}) before logging "${what}":\n${stderr}`);
    return line;
  };
  await waitForLog((l) => l.msg === READY[command], READY[command]!);
  return {
    child,
    logs,
    stdout,
    waitForLog,
    kill9: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    terminate: async (timeoutMs = 60_000) => {
      child.kill('SIGTERM');
      const giveUp = new AbortController();
      const outcome = await Promise.race([exited.then((code) => ({ code })), delay(timeoutMs, undefined, { signal: giveUp.signal }).then(() => undefined)]);
      giveUp.abort();
      if (outcome) return outcome.code;
      const last = logs
        .slice(-10)
        .map((l) => JSON.stringify(l))
        .join('\n');
      throw new Error(`${command} did not exit within ${timeoutMs} ms of SIGTERM; its last log lines:\n${last}\n${stderr}`);
    },
  };
}

/** The usual cast of an end-to-end test, each part real. */
export interface Stack {
  readonly nats: LocalNatsServer;
  readonly fn: FunctionServer;
  readonly sink: CallbackSink;
  readonly config: Config;
  readonly resolver: FunctionResolver;
  readonly gateway: RunningGateway;
}

export interface StackOptions {
  /** How the function answers; echoes by default. */
  readonly handler?: Handler;
  /** The function's registered name; default "work". */
  readonly name?: string;
  readonly config?: DeepPartial<Config>;
  /** Start an in-process worker too; default true. */
  readonly worker?: boolean;
  /** Extra nats-server config text, e.g. `authorization { ... }` or a `tls { ... }` block. */
  readonly natsConfig?: string;
}

/** nats-server, a function, a callback sink, a gateway and (unless told otherwise) a worker. */
export async function startStack(t: Test, opts: StackOptions = {}): Promise<Stack> {
  const nats = await startNatsServer(t, opts.natsConfig);
  const fn = await startFunctionServer(t, opts.handler);
  const sink = await startCallbackSink(t);
  const resolver = resolverFor({ [opts.name ?? 'work']: fn.url });
  const config = configFor(nats.url, opts.config);
  const gateway = await startTestGateway(t, config, resolver);
  if (opts.worker ?? true) await startTestWorker(t, config, resolver);
  return { nats, fn, sink, config, resolver, gateway };
}

/** A stack whose worker a test starts itself as a child process (to kill or stop it). */
export interface ProcessStack {
  readonly nats: LocalNatsServer;
  readonly fn: FunctionServer;
  readonly sink: CallbackSink;
  readonly gateway: RunningGateway;
  /** The environment a worker process needs to serve function "work"; add the settings under test. */
  readonly workerEnv: Readonly<Record<string, string>>;
}

/** nats-server, function "work", a callback sink and an in-process gateway; no worker yet. */
export async function startProcessStack(t: Test, handler?: Handler): Promise<ProcessStack> {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, handler);
  const sink = await startCallbackSink(t);
  const functionsFile = await writeFunctionsFile(t, { work: fn.url });
  const gateway = await startTestGateway(t, configFor(nats.url), resolverFor({ work: fn.url }));
  return {
    nats,
    fn,
    sink,
    gateway,
    workerEnv: { NATS_URL: nats.url, functions_file: functionsFile, callback_allow: LOOPBACK_CALLBACK_ALLOW_ENV },
  };
}
