import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { spawnAsyncfn, type AsyncfnProcess, type SpawnOptions } from './asyncfn.js';

/** Variables of the test runner's environment that would change what `asyncfn up` does. */
export const UP_UNSET = ['NATS_URL', 'faas_nats_address', 'nats_host', 'callback_allow', 'gateway_host', 'worker_host', 'functions_file', 'ASYNCFN_CONFIG'];

/**
 * Runs `asyncfn up` (what `npm start` runs) as a real process in its own working directory (its
 * nats-server keeps its store there), on free ports, and waits until its gateway listens.
 */
export async function startUp(t: Test, args: string[] = [], env: Record<string, string> = {}): Promise<AsyncfnProcess> {
  return startUpIn(t, await upWorkDir(t), { args }, env);
}

/** An empty working directory for `asyncfn up`, removed at teardown. */
export async function upWorkDir(t: Test): Promise<string> {
  const cwd = await mkdtemp(join(tmpdir(), 'asyncfn-up-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  return cwd;
}

/**
 * Runs `asyncfn up` in `cwd` (again, for a test of what it finds there) and waits until its gateway
 * listens. Without its web console unless `env` turns it on: tests run from the sources, where no
 * console is built (`npm run build`); test/e2e/console.test.ts runs `up` with one.
 */
export function startUpIn(t: Test, cwd: string, opts: Omit<SpawnOptions, 'cwd' | 'unset'> = {}, env: Record<string, string> = {}): Promise<AsyncfnProcess> {
  return spawnAsyncfn(t, 'up', { console: 'false', ...env }, { ...opts, cwd, unset: UP_UNSET });
}

/** The config file `asyncfn up` started in `cwd` gives its nats-server (`nats-server -c <it>`). */
export function upNatsConfig(cwd: string): string {
  return join(cwd, '.asyncfn', 'nats', 'nats-server.conf');
}

/**
 * The pids of the nats-server processes running on the store of `asyncfn up` in `cwd`, read from
 * /proc (Linux): a nats-server whose command line names that directory's config file.
 */
export async function natsServersOn(cwd: string): Promise<number[]> {
  const config = upNatsConfig(cwd);
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0]?.endsWith('nats-server') && argv.includes(config)) pids.push(Number(entry));
  }
  return pids;
}

function portOf(up: AsyncfnProcess, msg: string): number {
  const line = up.logs.find((l) => l.msg === msg);
  if (typeof line?.url !== 'string') throw new Error(`no "${msg}" log line with a url`);
  return Number(new URL(line.url).port);
}

/** The ports of everything `asyncfn up` starts, from its own log. */
export function upPorts(up: AsyncfnProcess): { gateway: number; worker: number; nats: number; samples: number } {
  return {
    gateway: portOf(up, 'gateway listening'),
    worker: portOf(up, 'worker health and metrics server listening'),
    nats: portOf(up, 'started local nats-server with JetStream'),
    samples: portOf(up, 'sample functions running'),
  };
}
