import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { spawnAsyncfn, type AsyncfnProcess } from './asyncfn.js';

/** Variables of the test runner's environment that would change what `asyncfn up` does. */
const UP_UNSET = ['NATS_URL', 'faas_nats_address', 'nats_host', 'callback_allow', 'gateway_host', 'worker_host', 'functions_file', 'ASYNCFN_CONFIG'];

/**
 * Runs `asyncfn up` (what `npm start` runs) as a real process in its own working directory (its
 * nats-server keeps its store there), on free ports, and waits until its gateway listens.
 */
export async function startUp(t: Test, args: string[] = [], env: Record<string, string> = {}): Promise<AsyncfnProcess> {
  const cwd = await mkdtemp(join(tmpdir(), 'asyncfn-up-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  return spawnAsyncfn(t, 'up', env, { args, cwd, unset: UP_UNSET });
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
