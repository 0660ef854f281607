import t from 'tap';
import { functionLabels, OTHER_FUNCTIONS_LABEL } from '../../../src/telemetry/function-labels.js';

t.test('functionLabels: the first `cap` names are their own label, every later one is _other, warned about once', async (t) => {
  const warnings: Array<[number, string]> = [];
  const label = functionLabels(2, (cap, name) => warnings.push([cap, name]));
  t.equal(label('a'), 'a');
  t.equal(label('b'), 'b');
  t.equal(label('c'), OTHER_FUNCTIONS_LABEL, 'past the cap');
  t.equal(label('d'), OTHER_FUNCTIONS_LABEL);
  t.equal(label('a'), 'a', 'a name admitted keeps its label');
  t.equal(label('c'), OTHER_FUNCTIONS_LABEL, 'a name refused stays refused');
  t.same(warnings, [[2, 'c']], 'one warning, when the cap is first reached');
});

t.test('functionLabels: by default the first 1,000 names', async (t) => {
  const label = functionLabels();
  const own = Array.from({ length: 1000 }, (_, i) => `f${i}`);
  t.same(own.map(label), own);
  t.equal(label('f1000'), OTHER_FUNCTIONS_LABEL);
});
