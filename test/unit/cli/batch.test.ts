import t from 'tap';
import { countsLine, progressBar } from '../../../src/cli/batch.js';
import { batchStatusOf } from '../../../src/status/batches.js';

t.test('progressBar: cells and percentage, clamped', async (t) => {
  t.equal(progressBar(0, 10), '[----------]   0.0%');
  t.equal(progressBar(0.5, 10), '[#####-----]  50.0%');
  t.equal(progressBar(1, 10), '[##########] 100.0%');
  t.equal(progressBar(2, 4), '[####] 100.0%');
  t.equal(progressBar(Number.NaN, 4), '[----]   0.0%');
});

t.test('batchStatusOf: pending, progress and done from the record and the counts', async (t) => {
  const record = { batchId: 'b', function: 'f', namespace: 'n', queue: 'q', state: 'accepted' as const, accepted: 10, createdAtMs: 1 };
  const partial = batchStatusOf(record, { succeeded: 3, failed: 1, deadLettered: 0, cancelled: 0 });
  t.same(partial.counts, { pending: 6, succeeded: 3, failed: 1, deadLettered: 0, cancelled: 0 });
  t.equal(partial.progress, 0.4);
  t.equal(partial.done, false);
  t.equal(countsLine(partial), '4/10 ended: 3 succeeded, 1 failed, 0 dead-lettered, 0 cancelled, 6 pending');
  t.equal(batchStatusOf(record, { succeeded: 9, failed: 0, deadLettered: 0, cancelled: 1 }).done, true);
  t.equal(batchStatusOf({ ...record, state: 'accepting' }, { succeeded: 10, failed: 0, deadLettered: 0, cancelled: 0 }).done, false, 'more items may come');
});
