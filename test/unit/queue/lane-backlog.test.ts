import t from 'tap';
import { deliversNow } from '../../../src/queue/lane-backlog.js';

const consumer = (pending: number, ackPending: number, maxAckPending?: number) => ({
  num_pending: pending,
  num_ack_pending: ackPending,
  config: { max_ack_pending: maxAckPending },
});

t.test('a lane delivers now only what was never delivered, below its max_ack_pending', async (t) => {
  t.equal(deliversNow(consumer(3, 0, 10)), true, 'waiting, room');
  t.equal(deliversNow(consumer(0, 1, 10)), false, 'only a retry waiting out its back-off (unacked)');
  t.equal(deliversNow(consumer(1, 1, 1)), false, 'at its limit: a retry, or a run on another worker, fills it');
  t.equal(deliversNow(consumer(1, 2, 1)), false, 'above its limit (it was lowered)');
  t.equal(deliversNow(consumer(2, 0, 1)), true);
  t.equal(deliversNow(consumer(2, 5, -1)), true, 'no limit (-1)');
  t.equal(deliversNow(consumer(2, 5)), true, 'no limit set');
});
