import fc from 'fast-check';
import t from 'tap';
import { LowerCaseNames } from '../../../src/http/fields.js';
import { assertProperty, fuzzRun } from '../../helpers/fuzz.js';

t.test('LowerCaseNames gives every name its lower-case form, read once or again, within its bound or past it', async (t) => {
  const names = new LowerCaseNames(3);
  for (const round of [1, 2]) {
    for (const name of ['Content-Type', 'content-type', 'X-Call-Id', 'HOST', 'x-extra', 'X-Extra']) {
      t.equal(names.of(name), name.toLowerCase(), `round ${round}: ${name}`);
    }
  }
  t.equal(names.size, 3, 'no more names kept than its bound');
});

t.test('property: LowerCaseNames.of is String#toLowerCase, whatever came before', async (t) => {
  const names = new LowerCaseNames(8);
  await assertProperty(
    fuzzRun(t, 'lower-case names', 500),
    fc.property(fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 40 }), (seen) => seen.every((name) => names.of(name) === name.toLowerCase())),
  );
});
