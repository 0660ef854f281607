import fc from 'fast-check';
import t from 'tap';
import { BoundedMemo, shortKey } from '../../src/bounded-memo.js';
import { assertProperty, fuzzRun } from '../helpers/fuzz.js';

t.test('BoundedMemo gives what its function gives, asked once or again, within its bound or past it', async (t) => {
  let calls = 0;
  const lower = new BoundedMemo(
    (name: string) => {
      calls += 1;
      return name.toLowerCase();
    },
    { max: 3 },
  );
  const names = ['Content-Type', 'content-type', 'X-Call-Id', 'HOST', 'x-extra', 'X-Extra'];
  for (const round of [1, 2]) for (const name of names) t.equal(lower.get(name), name.toLowerCase(), `round ${round}: ${name}`);
  t.equal(lower.size, 3, 'no more keys kept than its bound');
  t.equal(calls, names.length + names.length - 3, 'the kept keys are not worked out again; the others are');
});

t.test('BoundedMemo keeps null like any value, and only the keys `keep` accepts', async (t) => {
  let calls = 0;
  const valid = new BoundedMemo(
    (name: string) => {
      calls += 1;
      return /^[a-z]+$/.test(name) ? name : null;
    },
    { max: 10, keep: shortKey(5) },
  );
  for (const round of [1, 2]) {
    t.equal(valid.get('abc'), 'abc', `round ${round}: valid`);
    t.equal(valid.get('a b'), null, `round ${round}: not valid`);
    t.equal(valid.get('abcdefgh'), 'abcdefgh', `round ${round}: valid, longer than the keys kept`);
  }
  t.equal(valid.size, 2, 'the long key is not kept');
  t.equal(calls, 4, 'worked out once each, the long key each time');
});

t.test('BoundedMemo keeps nothing for a key whose function throws', async (t) => {
  let calls = 0;
  const parsed = new BoundedMemo(
    (text: string) => {
      calls += 1;
      if (!/^\d+$/.test(text)) throw new Error(`not a number: ${text}`);
      return Number(text);
    },
    { max: 10 },
  );
  for (const round of [1, 2]) {
    t.equal(parsed.get('12'), 12, `round ${round}: a number`);
    t.throws(() => parsed.get('x'), /not a number: x/, `round ${round}: it throws each time`);
  }
  t.equal(parsed.size, 1, 'only the number is kept');
  t.equal(calls, 3, 'the number worked out once, the other each time');
});

t.test('property: BoundedMemo.get is its function, whatever came before', async (t) => {
  const lower = new BoundedMemo((name: string) => name.toLowerCase(), { max: 8, keep: shortKey(6) });
  await assertProperty(
    fuzzRun(t, 'bounded memo', 500),
    fc.property(fc.array(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 40 }), (seen) => seen.every((name) => lower.get(name) === name.toLowerCase())),
  );
});
