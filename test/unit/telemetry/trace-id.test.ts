import t from 'tap';
import { traceIdOf } from '../../../src/telemetry/tracing.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

t.test('traceIdOf reads the trace id of a valid traceparent', async (t) => {
  t.equal(traceIdOf(`00-${TRACE_ID}-b7ad6b7169203331-01`), TRACE_ID);
  t.equal(traceIdOf(`00-${TRACE_ID}-b7ad6b7169203331-00`), TRACE_ID, 'unsampled still has a trace id');
  t.equal(traceIdOf(` 00-${TRACE_ID}-b7ad6b7169203331-01 `), TRACE_ID, 'surrounding blanks ignored');
  t.equal(traceIdOf(`01-${TRACE_ID}-b7ad6b7169203331-01-future`), TRACE_ID, 'a future version may carry more fields');
});

t.test('traceIdOf gives undefined for anything else', async (t) => {
  for (const bad of [
    undefined,
    '',
    'garbage',
    `00-${TRACE_ID}-b7ad6b7169203331`,
    `00-${TRACE_ID.toUpperCase()}-b7ad6b7169203331-01`,
    `00-${'0'.repeat(32)}-b7ad6b7169203331-01`,
    `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
    `ff-${TRACE_ID}-b7ad6b7169203331-01`,
    `00-${TRACE_ID}-b7ad6b7169203331-01-extra`,
    `00-${TRACE_ID}0-b7ad6b7169203331-01`,
  ]) {
    t.equal(traceIdOf(bad), undefined, JSON.stringify(bad));
  }
});
