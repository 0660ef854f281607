/**
 * Coalesces NATS writes. nats.js flushes its outbound buffer in a microtask after the first
 * command of a turn, so acks and record updates made while handling different sockets' events
 * (one HTTP response each) become one socket write each. Deferring them to the check phase runs
 * every operation queued during one I/O phase back to back, and nats.js then flushes them in a
 * single write: fewer syscalls and wake-ups for nats-server, at the cost of one loop turn.
 */
let queued: Array<() => void> = [];

function runQueued(): void {
  const ops = queued;
  queued = [];
  for (const op of ops) op();
}

/** Runs `op` after the current I/O phase, together with every other operation queued in it. */
export function inWriteBatch<T>(op: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (queued.length === 0) setImmediate(runQueued);
    queued.push(() => {
      try {
        op().then(resolve, reject);
      } catch (err) {
        reject(err);
      }
    });
  });
}

