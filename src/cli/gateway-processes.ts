import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../telemetry/logger.js';

/** What the primary sends a gateway process to make it drain and exit, as SIGTERM does. */
export const STOP_MESSAGE = 'asyncfn:stop';

export interface GatewayProcesses {
  /** Asks every process to drain (STOP_MESSAGE) and resolves once all have exited. */
  close(): Promise<void>;
}

/**
 * The primary of `gateway_processes` > 1: forks `count` gateway processes that share the listening
 * port through node:cluster (on Linux the primary accepts connections and hands them out round
 * robin) and supervises them. It connects to nothing itself. Resolves once every process is
 * listening; rejects, stopping the others, when one exits before that (a bad config, NATS
 * unreachable: the same failure as with one process). A process that dies later is replaced; a
 * replacement that dies before listening stops the whole gateway (exit code 1), so a crash loop
 * shows as a failing gateway rather than a busy primary.
 */
export async function runGatewayProcesses(count: number, logger: Logger, onFatal: (err: Error) => void): Promise<GatewayProcesses> {
  let closing = false;
  const running = new Set<Worker>();

  /** Forks one process; resolves once it listens, rejects if it exits first. */
  const fork = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork();
      running.add(worker);
      let listening = false;
      worker.once('listening', () => {
        listening = true;
        resolve(worker);
      });
      worker.once('exit', (code, signal) => {
        running.delete(worker);
        if (!listening) {
          reject(new Error(`a gateway process (pid ${worker.process.pid}) exited before listening (${signal ?? `code ${code}`})`));
          return;
        }
        if (closing) return;
        logger.error({ pid: worker.process.pid, code, signal }, 'a gateway process exited; starting another');
        fork().catch(onFatal);
      });
    });

  const close = async (): Promise<void> => {
    closing = true;
    const exits = [...running].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of running) if (w.isConnected()) w.send(STOP_MESSAGE);
    await Promise.all(exits);
  };

  try {
    const workers = await Promise.all(Array.from({ length: count }, fork));
    logger.info({ processes: count, pids: workers.map((w) => w.process.pid) }, 'gateway processes listening');
  } catch (err) {
    await close();
    throw err;
  }
  return { close };
}
