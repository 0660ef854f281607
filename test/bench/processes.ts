/**
 * The bench's child processes: fixture servers, asyncfn commands and autocannon, plus readers of a
 * process's RSS and CPU time from /proc. Every child is killed when the bench exits, whatever happens.
 */
import { createInterface } from 'node:readline';
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { gatewayDeploymentEnv } from '../helpers/deploy.js';
import { within } from '../helpers/eventually.js';
import { REPO_ROOT } from '../helpers/repo-root.js';
import type { FixtureCommand, FixtureEvent, FixtureRole, FixtureStats } from './fixture-server.js';

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends `signal`, then SIGKILL if the child has not exited after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (child.pid === undefined || exited(child)) return;
  const gone = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

/** A fixture-server.ts process: a trivial function or a callback sink. */
export interface Fixture {
  readonly url: string;
  readonly pid: number;
  stats(): Promise<FixtureStats>;
  reset(): Promise<void>;
  trace(on: boolean): Promise<void>;
  hold(on: boolean): Promise<void>;
  /** Answers every held request (in batches). */
  release(): Promise<void>;
  /** With tracing on: called for every request, with its X-Call-Id and arrival time (epoch ms). */
  onRequest(listener: (callId: string, atMs: number) => void): void;
  stop(): Promise<void>;
}

export async function startFixture(role: FixtureRole): Promise<Fixture> {
  // Beside this module: compiled when the bench is, else through tsx.
  const program = join(import.meta.dirname, benchCompiled ? 'fixture-server.js' : 'fixture-server.ts');
  const child = track(fork(program, [role], { execArgv: benchCompiled ? [] : ['--import', 'tsx'], stdio: 'inherit' }));
  let nextId = 0;
  const pending = new Map<number, (reply: unknown) => void>();
  const listeners: Array<(callId: string, atMs: number) => void> = [];
  let listening: (url: string) => void = () => undefined;
  const url = new Promise<string>((resolveUrl) => (listening = resolveUrl));
  child.on('message', (message: FixtureEvent | { id: number }) => {
    if ('id' in message) {
      pending.get(message.id)?.(message);
      pending.delete(message.id);
    } else if (message.event === 'listening') listening(message.url);
    else for (const listener of listeners) listener(message.callId, message.atMs);
  });
  const request = <T>(command: FixtureCommand): Promise<T> => {
    const id = nextId++;
    const reply = new Promise<T>((resolveReply) => pending.set(id, resolveReply as (reply: unknown) => void));
    child.send({ id, ...command });
    return within(reply, 10_000, `the ${role} fixture to answer ${command.cmd}`);
  };
  const died = once(child, 'exit').then(([code]) => {
    throw new Error(`the ${role} fixture exited with code ${String(code)} before listening`);
  });
  return {
    url: await within(Promise.race([url, died]), 20_000, `the ${role} fixture to listen`),
    pid: child.pid!,
    stats: () => request<FixtureStats>({ cmd: 'stats' }),
    reset: () => request({ cmd: 'reset' }),
    trace: (on) => request({ cmd: 'trace', on }),
    hold: (on) => request({ cmd: 'hold', on }),
    release: () => request({ cmd: 'release' }),
    onRequest: (listener) => void listeners.push(listener),
    stop: () => stopChild(child, 'SIGTERM', 2_000),
  };
}

/** A free TCP port on loopback (closed again before it is returned; fine for a bench on 127.0.0.1). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** `asyncfn <command>` from the TypeScript sources, as its own process. */
export interface AsyncfnChild {
  readonly pid: number;
  /** SIGTERM (drain), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Throws, with the tail of the child's output, if it has exited. */
  assertRunning(): void;
  /** How many times it logged each warning or error (`msg`), since it started. */
  warnings(): ReadonlyMap<string, number>;
}

/**
 * Whether the bench itself runs compiled (`npm run bench` runs dist/test/bench/main.js, built by
 * the same tsc run as dist/src): its in-process pieces then cost what the shipped code costs.
 * Through tsx, every closure created also pays esbuild's `__name` wrapper (the invocation machine
 * piece measured 23 µs compiled, 27–33 µs through tsx).
 */
const benchCompiled = import.meta.url.endsWith('.js');

/** How asyncfn children run: from the TypeScript sources through tsx, or compiled as in production. */
let compiled = benchCompiled;

/**
 * Runs asyncfn children compiled from now on, so their memory and CPU are a production worker's,
 * without the TypeScript loader: from the dist/ the bench runs from, or compiled now (tsc to
 * dist/) when the bench runs from its sources.
 */
/** Whether `command` is on PATH. */
export function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function useCompiledAsyncfn(): void {
  if (!benchCompiled) execFileSync(join(REPO_ROOT, 'node_modules/.bin/tsc'), { cwd: REPO_ROOT, stdio: 'inherit' });
  compiled = true;
}

/** Whether dist/bundle-bench has been built by this bench run. */
let bundled = false;

/**
 * The program compiled asyncfn children run: the bundle the image and `npm start` run
 * (deploy/bundle.mjs), built from the sources once per bench run (under a second) so it is never
 * older than they are, into the bench's own dist/bundle-bench.
 */
function shippedEntry(): string {
  if (!bundled) execFileSync(process.execPath, [join(REPO_ROOT, 'deploy/bundle.mjs'), 'dist/bundle-bench'], { cwd: REPO_ROOT, stdio: 'inherit' });
  bundled = true;
  return 'dist/bundle-bench/main.js';
}

/** Node's arguments before a program: the TypeScript loader unless running compiled code. */
export function loaderArgs(): string[] {
  return compiled ? [] : ['--import', 'tsx'];
}

/**
 * The node flags of asyncfn's image (deploy/Dockerfile's `ENV NODE_OPTIONS=`): asyncfn children
 * run with them, so the bench measures asyncfn as it runs in production.
 */
function imageNodeOptions(): string {
  const dockerfile = readFileSync(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8');
  const match = /^ENV NODE_OPTIONS=(.*)$/m.exec(dockerfile);
  if (match === null) throw new Error('deploy/Dockerfile sets no NODE_OPTIONS; the bench runs asyncfn with the flags of its image');
  return match[1]!.trim();
}

/** What else of the gateway Deployment's environment its process gets in the bench (not its flags, given as arguments). */
function gatewayProcessEnv(): Record<string, string> {
  if (process.env.ASYNCFN_BENCH_NODE_ARGS !== undefined) return {};
  const { NODE_OPTIONS: _flags, ...rest } = gatewayDeploymentEnv();
  return rest;
}

/**
 * Node arguments for asyncfn children only (not the bench, fixtures or peers, which run as their
 * users run them): the image's, and the gateway's Deployment's for the gateway; or
 * `ASYNCFN_BENCH_NODE_ARGS` split on spaces for both, to try others
 * (`ASYNCFN_BENCH_NODE_ARGS='--max-semi-space-size=4' npm run bench`; empty: node's defaults).
 */
export function asyncfnNodeFlags(command: 'worker' | 'gateway' = 'worker'): string[] {
  const flags = process.env.ASYNCFN_BENCH_NODE_ARGS ?? (command === 'gateway' ? (gatewayDeploymentEnv().NODE_OPTIONS ?? imageNodeOptions()) : imageNodeOptions());
  return flags.split(' ').filter((arg) => arg !== '');
}

export function spawnAsyncfn(command: 'worker' | 'gateway', env: Record<string, string>): AsyncfnChild {
  const entry = compiled ? shippedEntry() : 'src/cli/main.ts';
  const child = track(
    spawn(process.execPath, [...loaderArgs(), ...asyncfnNodeFlags(command), entry, command], {
      cwd: REPO_ROOT,
      // The bench's callback sink listens on loopback, which the callback SSRF guard refuses by default.
      env: { ...process.env, ...(command === 'gateway' ? gatewayProcessEnv() : {}), log_level: 'warn', callback_allow: '127.0.0.0/8,::1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  const keep = (chunk: Buffer): void => void (output = (output + chunk.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // It logs at warn level: each line is a warning or an error, counted by its message.
  const warnings = new Map<string, number>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let msg: string;
    try {
      msg = String((JSON.parse(line) as { msg?: unknown }).msg);
    } catch {
      msg = line.slice(0, 120);
    }
    warnings.set(msg, (warnings.get(msg) ?? 0) + 1);
  });
  return {
    pid: child.pid!,
    stop: (graceMs = 5_000) => stopChild(child, 'SIGTERM', graceMs),
    assertRunning: () => {
      if (exited(child)) throw new Error(`asyncfn ${command} exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    },
    warnings: () => warnings,
  };
}

/** What the bench reads from autocannon's JSON result. */
export interface AutocannonResult {
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly durationSeconds: number;
  readonly latency: { readonly p50: number; readonly p99: number };
}

export interface AutocannonOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly body: string;
  readonly headers: Record<string, string>;
}

/** Runs autocannon's CLI in its own process, so the load generator does not share the server's CPU thread. */
export async function runAutocannon(opts: AutocannonOptions): Promise<AutocannonResult> {
  const args = ['-j', '-n', '-m', 'POST', '-c', String(opts.connections), '-d', String(opts.durationSeconds), '-b', opts.body];
  for (const [name, value] of Object.entries(opts.headers)) args.push('-H', `${name}=${value}`);
  const child = track(spawn(join(REPO_ROOT, 'node_modules/.bin/autocannon'), [...args, opts.url], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const [code] = await within(once(child, 'exit') as Promise<[number | null]>, (opts.durationSeconds + 30) * 1000, 'autocannon to finish').catch(async (err: unknown) => {
    await stopChild(child, 'SIGKILL');
    throw err;
  });
  if (code !== 0) throw new Error(`autocannon exited with code ${String(code)}:\n${stderr}`);
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    '2xx': number;
    non2xx: number;
    errors: number;
    timeouts: number;
    duration: number;
    latency: { p50: number; p99: number };
  };
  return {
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
    latency: { p50: result.latency.p50, p99: result.latency.p99 },
  };
}

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS). */
export async function readRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kib) * 1024;
}

/** Clock ticks per second of /proc/<pid>/stat times; 100 on Linux (USER_HZ). */
const CLOCK_TICKS_PER_SECOND = 100;

/** User plus system CPU time of a process in ms, from /proc/<pid>/stat (utime + stime). */
export async function readCpuMs(pid: number): Promise<number> {
  return cpuMsOf(`/proc/${pid}/stat`);
}

/**
 * CPU time of a process's main thread alone (the event loop, where JavaScript runs), ms. The
 * difference to {@link readCpuMs} is V8's and libuv's helper threads: the optimizing compiler,
 * the concurrent and parallel garbage collector, the thread pool.
 */
export async function readMainThreadCpuMs(pid: number): Promise<number> {
  return cpuMsOf(`/proc/${pid}/task/${pid}/stat`);
}

async function cpuMsOf(statFile: string): Promise<number> {
  const stat = await readFile(statFile, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** CPU time the whole machine spent busy (every core: not idle, not waiting for I/O), ms, from /proc/stat. */
export async function readMachineBusyMs(): Promise<number> {
  const stat = await readFile('/proc/stat', 'utf8');
  const ticks = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already counted in user).
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks;
  return ((user + nice + system + irq + softirq + steal) * 1000) / CLOCK_TICKS_PER_SECOND;
}
