import t from 'tap';
import { formatQueuesTable } from '../../../src/cli/queues-format.js';
import type { LaneStats, QueueStats } from '../../../src/status/queue-stats.js';

const lane = (name: string, limit: number | null): LaneStats => ({
  lane: name,
  consumer: `faas-workers_f_${name}`,
  pending: 4,
  ackPending: 1,
  inFlight: 1,
  waitingRetries: 0,
  limit,
});

const queue: QueueStats = {
  kind: 'queue',
  name: 'faas-request',
  stream: 'faas-request',
  consumer: 'faas-workers',
  messages: 9,
  pending: 8,
  ackPending: 2,
  inFlight: 2,
  waitingRetries: 0,
  redelivered: 0,
  delivered: 2,
  waitingPulls: 0,
  consumers: 3,
  oldestAtMs: 0,
  lanes: [lane('slow.openfaas-fn', 3), lane('echo.openfaas-fn', null)],
};

t.test('a lane shows its own limit as "lane ≤N", and "lane" alone when it has none', async (t) => {
  const [, queueLine, limited, unlimited] = formatQueuesTable([queue], 65_000);
  t.match(queueLine, /^faas-request +queue +8 +2 +0 +2 +0 +3 +1m5s$/);
  t.match(limited, /^ {2}slow\.openfaas-fn +lane ≤3 +4 +1 +0 +1$/);
  t.match(unlimited, /^ {2}echo\.openfaas-fn +lane +4 +1 +0 +1$/);
});

t.test("no line ends in spaces, the lanes' empty cells included", async (t) => {
  for (const line of formatQueuesTable([queue], 65_000)) t.equal(line, line.trimEnd(), `"${line}"`);
});
