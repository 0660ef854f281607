import { readFileSync } from 'node:fs';

/** Whether bytes from a peer on `remotePort` wait unread in a TCP socket on this machine (/proc, Linux). */
function unreadFrom(remotePort: number): boolean {
  const hexPort = remotePort.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(file, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue ...
      const fields = row.trim().split(/\s+/);
      if (fields.length < 5 || !fields[2]!.endsWith(`:${hexPort}`)) continue;
      if (parseInt(fields[4]!.split(':')[1]!, 16) > 0) return true;
    }
  }
  return false;
}

/** Blocks this thread, and its event loop with it, for `ms`: as a long turn of the loop does. */
export function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Blocks this thread, and its event loop with it, as a long turn does: for at least `minMs`, and
 * then until bytes from the peer on `remotePort` (a nats-server's client port) wait unread in a
 * socket, that is until its answer has arrived and not been read; at most `maxMs`. Returns whether
 * such bytes arrived. Waiting for the arrival rather than a fixed time keeps a test that needs the
 * answer inside the blocked stretch right on a slow, loaded machine.
 */
export function blockUntilUnreadFrom(remotePort: number, minMs: number, maxMs: number): boolean {
  const started = performance.now();
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= minMs && unreadFrom(remotePort)) return true;
    if (elapsed >= maxMs) return false;
    blockFor(5);
  }
}
