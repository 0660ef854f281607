import t from 'tap';
import { byCodeUnits } from '../../src/order.js';

t.test('names sort by code units: the same order on every machine, whatever its locale', async (t) => {
  t.same(['b', 'a-2', 'B', 'a', '_x', 'a10', 'a9'].sort(byCodeUnits), ['B', '_x', 'a', 'a-2', 'a10', 'a9', 'b']);
  t.equal(byCodeUnits('same', 'same'), 0);
  t.ok(byCodeUnits('faas-request', 'slow') < 0 && byCodeUnits('slow', 'faas-request') > 0);
});
