/**
 * Section 2c, the plain worker (issue 12): the same drain by plain-worker.mjs, which does the job
 * with nats.js and undici as their documentation shows and keeps none of a queue-worker's
 * guarantees. It runs on the same nats-server, stream and durable consumer as asyncfn's worker, so
 * what it costs is what those two libraries cost for this job when used plainly on this box.
 */
import { join } from 'node:path';
import type { Fixture } from './processes.js';
import { REPO_ROOT } from '../helpers/repo-root.js';
import { drainByPeerProcess, type PeerDrain } from './peer-process.js';
import { preload, progress, type BenchClient, type Scope } from './stack.js';

/** Queues `n` invocations on the bench queue, then drains them with a fresh plain worker at `concurrency`. */
export async function plainDrain(scope: Scope, client: BenchClient, natsPid: number, fn: Fixture, sink: Fixture, n: number, concurrency: number): Promise<PeerDrain> {
  await Promise.all([fn.reset(), sink.reset()]);
  await preload(client, n, sink.url);
  progress('plain', `draining ${n} with ${concurrency} slots (nats.js and undici alone)`);
  const drained = await drainByPeerProcess(
    scope,
    {
      name: 'the plain worker',
      args: [join(REPO_ROOT, 'test/bench/plain-worker.mjs'), client.natsUrl, client.spec.stream, client.spec.durable, fn.url, String(concurrency)],
      brokerPid: natsPid,
      fixturePids: [fn.pid, sink.pid],
    },
    sink,
    n,
  );
  progress('plain', `${drained.perSecond.toFixed(0)} invocations/s, ${drained.cpuMicrosPerJob.toFixed(0)} µs CPU each`);
  return drained;
}
