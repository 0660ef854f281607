import type { QueueKind, QueueStats } from '../status/queue-stats.js';
import { formatDurationMs } from './status-nats.js';

export const QUEUES_TABLE_HEADER = ['QUEUE', 'KIND', 'PENDING', 'IN-FLIGHT', 'RETRY-WAIT', 'ACK-PENDING', 'REDELIVERED', 'CONSUMERS', 'OLDEST'] as const;

const KIND_LABEL: Readonly<Record<QueueKind, string>> = { queue: 'queue', delayed: 'delayed', callbacks: 'callbacks', deadLetters: 'dead-letters' };

/**
 * The `asyncfn queues` table: a header line and one line per stream, columns padded to fit.
 * "-": does not apply to this kind of stream; "?": could not be told (see QUEUES_USAGE).
 */
export function formatQueuesTable(rows: readonly QueueStats[], nowMs: number): string[] {
  const cells = rows.flatMap((r) => {
    const count = (n: number | null): string => (n !== null ? String(n) : r.kind === 'queue' ? '?' : '-');
    const row = [
      r.name,
      KIND_LABEL[r.kind],
      String(r.pending),
      count(r.inFlight),
      count(r.waitingRetries),
      count(r.ackPending),
      count(r.redelivered),
      String(r.consumers),
      r.oldestAtMs === null ? '-' : formatDurationMs(nowMs - r.oldestAtMs),
    ];
    // A queue's lanes under it: one function (or concurrency key) each, with its limit.
    const lanes = r.lanes.map((l) => [
      `  ${l.lane}`,
      l.limit === null ? 'lane' : `lane ≤${l.limit}`,
      String(l.pending),
      count(l.inFlight),
      count(l.waitingRetries),
      String(l.ackPending),
      '',
      '',
      '',
    ]);
    return [row, ...lanes];
  });
  const all = [[...QUEUES_TABLE_HEADER], ...cells];
  const widths = QUEUES_TABLE_HEADER.map((_, col) => Math.max(...all.map((r) => r[col]!.length)));
  // Lines carry no trailing spaces (a lane's row ends in empty cells).
  return all.map((r) =>
    r
      .map((cell, col) => cell.padEnd(widths[col]!))
      .join('  ')
      .trimEnd(),
  );
}
