/**
 * One drain by a peer's worker process (BullMQ's, the plain worker's): the jobs are queued already;
 * the process is started cold, and measured from when it says "ready" to the sink's `n`th callback.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { readCpuMs, readMainThreadCpuMs, stopChild, type Fixture } from './processes.js';
import { pollUntil, within } from '../helpers/eventually.js';
import { rssSampler } from './memory.js';
import type { Scope } from './stack.js';
import { median, perSecond } from './stats.js';

/** What one peer drain measured. */
export interface PeerDrain {
  readonly perSecond: number;
  /** Worker process CPU time per job, µs. */
  readonly cpuMicrosPerJob: number;
  /** Of which its main thread's (the event loop's), µs. */
  readonly mainThreadCpuMicrosPerJob: number;
  /** Worker process peak RSS while draining, bytes. */
  readonly peakRssBytes: number;
  /** The broker's (redis-server's, nats-server's) CPU time per job, µs. */
  readonly brokerCpuMicrosPerJob: number;
  /** The function and callback sink fixtures' CPU time per job, µs (what this worker's requests cost them). */
  readonly fixturesCpuMicrosPerJob: number;
}

export interface PeerProcess {
  /** Names the worker in errors and time-outs ("the BullMQ worker"). */
  readonly name: string;
  /** A node program and its arguments; it prints a line on stdout once it takes jobs. */
  readonly args: readonly string[];
  readonly brokerPid: number;
  /** The function and callback sink fixture processes, whose CPU per job is read too. */
  readonly fixturePids: readonly number[];
}

/** Starts `peer` cold, waits for `n` callbacks on `sink`, stops it, and returns what it cost. */
export async function drainByPeerProcess(scope: Scope, peer: PeerProcess, sink: Fixture, n: number): Promise<PeerDrain> {
  const worker = spawn(process.execPath, peer.args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let stopping = false;
  const stop = () => {
    stopping = true;
    return stopChild(worker, 'SIGTERM', 5_000);
  };
  scope.defer(stop);
  const exited = once(worker, 'exit').then(([code]) => {
    if (!stopping) throw new Error(`${peer.name} exited with code ${String(code)}`);
  });
  const ready = once(createInterface({ input: worker.stdout }), 'line');
  // The worker takes jobs as soon as it is ready: CPU counts from its start, like asyncfn's.
  await within(Promise.race([ready, exited]), 30_000, `${peer.name} to start`);
  const fixturesCpuMs = async () => (await Promise.all(peer.fixturePids.map(readCpuMs))).reduce((a, b) => a + b, 0);
  const read = () => Promise.all([readCpuMs(worker.pid!), readMainThreadCpuMs(worker.pid!), readCpuMs(peer.brokerPid), fixturesCpuMs()]);
  const before = await read();
  const sampler = rssSampler(worker.pid!);
  await Promise.race([pollUntil(async () => (await sink.stats()).count >= n, `${n} callbacks from ${peer.name}`, 30_000 + n * 5, 20), exited]);
  const after = await read();
  const peakRssBytes = await sampler.stop();
  const drained = await sink.stats();
  // Each drain's worker starts cold, as each of asyncfn's turns does.
  await stop();
  const [cpu, mainCpu, brokerCpu, fixturesCpu] = after.map((ms, i) => ((ms - before[i]!) * 1000) / n) as [number, number, number, number];
  return {
    perSecond: perSecond(n - 1, drained.lastAtMs - drained.firstAtMs),
    cpuMicrosPerJob: cpu,
    mainThreadCpuMicrosPerJob: mainCpu,
    peakRssBytes,
    brokerCpuMicrosPerJob: brokerCpu,
    fixturesCpuMicrosPerJob: fixturesCpu,
  };
}

/** The median of each figure over `drains` (one per turn). */
export function medianDrain(drains: readonly PeerDrain[]): PeerDrain {
  return {
    perSecond: median(drains.map((p) => p.perSecond)),
    cpuMicrosPerJob: median(drains.map((p) => p.cpuMicrosPerJob)),
    mainThreadCpuMicrosPerJob: median(drains.map((p) => p.mainThreadCpuMicrosPerJob)),
    peakRssBytes: median(drains.map((p) => p.peakRssBytes)),
    brokerCpuMicrosPerJob: median(drains.map((p) => p.brokerCpuMicrosPerJob)),
    fixturesCpuMicrosPerJob: median(drains.map((p) => p.fixturesCpuMicrosPerJob)),
  };
}
