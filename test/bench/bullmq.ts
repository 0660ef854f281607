/**
 * Section 2b, the BullMQ peer (issue 12): the same drain as asyncfn's — `n` jobs queued first,
 * then one worker process at concurrency 100 that POSTs each 1 KiB body to the same function
 * process and the answer to the same callback sink — on a redis-server of its own. Runs only when
 * `redis-server` is on PATH (Debian: `apt-get install redis-server`); the report says when not.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Queue } from 'bullmq';
import { freePort, onPath, stopChild, type Fixture } from './processes.js';
import { REPO_ROOT } from '../helpers/repo-root.js';
import { within } from '../helpers/eventually.js';
import { drainByPeerProcess, type PeerDrain } from './peer-process.js';
import { BODY, progress, type Scope } from './stack.js';

export function redisServerFound(): boolean {
  return onPath('redis-server');
}

/** A redis-server without persistence on a free loopback port, killed with the scope. */
async function startRedis(scope: Scope): Promise<{ port: number; pid: number }> {
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  scope.defer(() => stopChild(redis, 'SIGKILL'));
  const lines = createInterface({ input: redis.stdout });
  await within(
    new Promise<void>((ready, failed) => {
      lines.on('line', (line) => {
        if (/Ready to accept connections/.test(line)) ready();
      });
      redis.once('exit', (code) => failed(new Error(`redis-server exited with code ${String(code)}`)));
    }),
    10_000,
    'redis-server to start',
  );
  redis.stdout.resume();
  return { port, pid: redis.pid! };
}

/** The BullMQ peer on a redis-server of its own: each `drain` queues `n` jobs and drains them with a fresh worker process. */
export interface BullmqPeer {
  drain(n: number, concurrency: number): Promise<PeerDrain>;
}

/** Starts the peer's redis-server and queue, both stopped with the scope. */
export async function startBullmqPeer(scope: Scope, fn: Fixture, sink: Fixture): Promise<BullmqPeer> {
  const { port, pid: redisPid } = await startRedis(scope);
  const name = 'bench';
  const queue = new Queue(name, { connection: { host: '127.0.0.1', port } });
  scope.defer(() => queue.close());
  return {
    async drain(n, concurrency) {
      progress('bullmq', `queueing ${n} jobs`);
      for (let i = 0; i < n; i += 1000) {
        const jobs = Array.from({ length: Math.min(1000, n - i) }, () => ({
          name: 'invoke',
          data: { functionUrl: fn.url, callbackUrl: sink.url, body: BODY },
        }));
        await queue.addBulk(jobs);
      }
      await Promise.all([fn.reset(), sink.reset()]);

      progress('bullmq', `draining ${n} with concurrency ${concurrency}`);
      const drained = await drainByPeerProcess(
        scope,
        {
          name: 'the BullMQ worker',
          args: [join(REPO_ROOT, 'test/bench/bullmq-worker.mjs'), String(port), name, String(concurrency)],
          brokerPid: redisPid,
          fixturePids: [fn.pid, sink.pid],
        },
        sink,
        n,
      );
      progress('bullmq', `${drained.perSecond.toFixed(0)} jobs/s`);
      return drained;
    },
  };
}
