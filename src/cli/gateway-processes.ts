import cluster, { type Worker } from 'node:cluster';
import { serveClusterMetrics } from '../telemetry/cluster-metrics.js';
import type { Logger } from '../telemetry/logger.js';
import { STOP_MESSAGE } from './stop-message.js';

export interface GatewayProcesses {
  /**
   * Asks every listening process to drain (STOP_MESSAGE), stops the ones still starting (SIGTERM:
   * they have accepted nothing), and resolves once all have exited.
   */
  close(): Promise<void>;
}

/**
 * The primary of `gateway_processes` > 1: forks `count` gateway processes that share the listening
 * port through node:cluster (on Linux the primary accepts connections and hands them out round
 * robin) and supervises them. It connects to nothing itself; it gathers the processes' metrics
 * for whichever of them a scrape reaches (cluster-metrics.ts). Resolves once every process is
 * listening; rejects, stopping the others, when one exits before that (a bad config, NATS
 * unreachable: the same failure as with one process). A process that dies later is replaced; a
 * replacement that dies before listening stops the whole gateway (exit code 1), so a crash loop
 * shows as a failing gateway rather than a busy primary.
 */
export async function runGatewayProcesses(count: number, logger: Logger, onFatal: (err: Error) => void): Promise<GatewayProcesses> {
  let closing = false;
  // A scrape of /metrics reaches one process; the primary gathers them all for it.
  const stopServingMetrics = serveClusterMetrics();
  const running = new Set<Worker>();
  const listening = new WeakSet<Worker>();

  /** Forks one process; `listening` resolves once it listens and rejects if it exits first. */
  const fork = (): { worker: Worker; listening: Promise<Worker> } => {
    const worker = cluster.fork();
    running.add(worker);
    const started = new Promise<Worker>((resolve, reject) => {
      worker.once('listening', () => {
        listening.add(worker);
        resolve(worker);
      });
      worker.once('exit', (code, signal) => {
        running.delete(worker);
        if (!listening.has(worker)) {
          reject(new Error(`a gateway process (pid ${worker.process.pid}) exited before listening (${signal ?? `code ${code}`})`));
          return;
        }
        if (closing) return;
        const replacement = fork();
        logger.error({ pid: worker.process.pid, code, signal, replacement: replacement.worker.process.pid }, 'a gateway process exited; starting another');
        replacement.listening.catch((err: Error) => {
          // A replacement stopped by close() before it listened is not a crash loop.
          if (!closing) onFatal(err);
        });
      });
    });
    return { worker, listening: started };
  };

  const close = async (): Promise<void> => {
    closing = true;
    const exits = [...running].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
    for (const w of running) {
      // A process still starting may not listen for messages yet; one that listens does.
      if (!listening.has(w)) w.process.kill('SIGTERM');
      else if (w.isConnected()) w.send(STOP_MESSAGE);
    }
    await Promise.all(exits);
    stopServingMetrics();
  };

  try {
    const workers = await Promise.all(Array.from({ length: count }, () => fork().listening));
    logger.info({ processes: count, pids: workers.map((w) => w.process.pid) }, 'gateway processes listening');
  } catch (err) {
    await close();
    throw err;
  }
  return { close };
}
