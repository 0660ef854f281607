/**
 * Section 2c, the worker's floor (issue 12): the same drain by the bare worker (bare-worker.mjs),
 * which does the job with nats.js and undici and keeps none of a queue-worker's guarantees. It
 * runs on the same nats-server, stream and durable consumer as asyncfn's worker, so what it costs
 * is what those two libraries cost for this job on this box: the least any worker built on them
 * can cost, asyncfn's included.
 */
import { join } from 'node:path';
import type { Fixture } from './processes.js';
import { REPO_ROOT } from '../helpers/repo-root.js';
import { drainByPeerProcess, type PeerDrain } from './peer-process.js';
import { preload, progress, type BenchClient, type Scope } from './stack.js';

/** Queues `n` invocations on the bench queue, then drains them with a fresh bare worker at `concurrency`. */
export async function bareDrain(scope: Scope, client: BenchClient, natsPid: number, fn: Fixture, sink: Fixture, n: number, concurrency: number): Promise<PeerDrain> {
  await Promise.all([fn.reset(), sink.reset()]);
  await preload(client, n, sink.url);
  progress('bare', `draining ${n} with ${concurrency} slots (nats.js and undici alone)`);
  const drained = await drainByPeerProcess(
    scope,
    {
      name: 'the bare worker',
      args: [join(REPO_ROOT, 'test/bench/bare-worker.mjs'), client.natsUrl, client.spec.stream, client.spec.durable, fn.url, String(concurrency)],
      brokerPid: natsPid,
    },
    sink,
    n,
  );
  progress('bare', `${drained.perSecond.toFixed(0)} invocations/s, ${drained.cpuMicrosPerJob.toFixed(0)} µs CPU each`);
  return drained;
}
