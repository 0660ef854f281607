import fc from 'fast-check';
import t from 'tap';
import { TokenRing } from '../../../src/queue/token-ring.js';

interface Entry {
  readonly token: number;
  readonly name: string;
}

const entry = (token: number): Entry => ({ token, name: `write ${token}` });

t.test('holds entries by token: get finds them, take removes them, size counts them', async (t) => {
  const ring = new TokenRing<Entry>(4);
  for (const token of [0, 1, 2]) ring.add(entry(token));
  t.equal(ring.size, 3);
  t.same(ring.get(1), entry(1));
  t.same(ring.take(1), entry(1), 'take returns the entry');
  t.equal(ring.get(1), undefined, 'and it is gone');
  t.equal(ring.take(1), undefined, 'taken twice: nothing the second time');
  t.equal(ring.size, 2);
  t.equal(ring.get(5), undefined, 'a token whose slot holds another (1 + 4) is not found: 5 was never added');
  t.equal(ring.get(Number.NaN), undefined, 'NaN (an unreadable reply subject) is held by none');
  t.equal(ring.get(-1), undefined);
});

t.test('a token whose slot is still held doubles the ring; every entry keeps its own slot', async (t) => {
  const ring = new TokenRing<Entry>(4);
  for (let token = 0; token < 4; token++) ring.add(entry(token));
  t.equal(ring.capacity, 4);
  ring.add(entry(4)); // slot 0 holds token 0, still waiting
  t.equal(ring.capacity, 8);
  for (let token = 0; token <= 4; token++) t.same(ring.get(token), entry(token), `token ${token} found after the growth`);
  // An old entry a whole ring behind new ones: 0 and 16 share slot 0 of 8 and of 16.
  for (let token = 1; token <= 4; token++) ring.take(token);
  ring.add(entry(16));
  t.equal(ring.capacity, 32, 'doubled until 0 and 16 have slots of their own');
  t.same(ring.get(0), entry(0));
  t.same(ring.get(16), entry(16));
});

t.test('once empty, a grown ring goes back to its first size', async (t) => {
  const ring = new TokenRing<Entry>(4);
  for (let token = 0; token < 10; token++) ring.add(entry(token));
  t.equal(ring.capacity, 16);
  for (let token = 0; token < 9; token++) ring.take(token);
  t.equal(ring.capacity, 16, 'not while an entry is left');
  ring.take(9);
  t.equal(ring.capacity, 4);
  ring.add(entry(10));
  t.same(ring.get(10), entry(10), 'and it holds entries again');
});

t.test('forEach visits every entry once, and the visit may take the entry it is given', async (t) => {
  const ring = new TokenRing<Entry>(8);
  for (const token of [3, 4, 5, 6]) ring.add(entry(token));
  const seen: number[] = [];
  ring.forEach((e) => {
    seen.push(e.token);
    if (e.token % 2 === 0) ring.take(e.token);
  });
  t.same(seen, [3, 4, 5, 6]);
  t.equal(ring.size, 2);
  t.same(ring.get(3), entry(3));
  t.equal(ring.get(4), undefined);
});

t.test('clear removes everything', async (t) => {
  const ring = new TokenRing<Entry>(4);
  for (let token = 0; token < 6; token++) ring.add(entry(token));
  ring.clear();
  t.equal(ring.size, 0);
  t.equal(ring.capacity, 4);
  for (let token = 0; token < 6; token++) t.equal(ring.get(token), undefined);
});

t.test('a capacity that is no power of two is refused', async (t) => {
  t.throws(() => new TokenRing<Entry>(6), RangeError);
  t.throws(() => new TokenRing<Entry>(0), RangeError);
});

t.test('tokens past 2^32 are found by their low bits like any other', async (t) => {
  const ring = new TokenRing<Entry>(4);
  const big = 2 ** 40 + 3;
  ring.add(entry(big));
  ring.add(entry(big + 1));
  t.same(ring.get(big), entry(big));
  t.same(ring.take(big + 1), entry(big + 1));
  t.equal(ring.get(3), undefined, 'a small token of the same low bits is another token');
});

t.test('behaves as a Map of the tokens handed out in order (property)', async () => {
  // Tokens handed out in order, as the confirmer does; each step adds the next or takes one at random.
  const step = fc.oneof(fc.constant<'add'>('add'), fc.nat({ max: 400 }), fc.constant<'sweep'>('sweep'));
  fc.assert(
    fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
      const ring = new TokenRing<Entry>(4);
      const model = new Map<number, Entry>();
      let next = 0;
      for (const s of steps) {
        if (s === 'add') {
          const e = entry(next++);
          ring.add(e);
          model.set(e.token, e);
        } else if (s === 'sweep') {
          // Takes every other entry, as an expiry takes the writes past their deadline.
          ring.forEach((e) => {
            if (e.token % 2 === 1) ring.take(e.token);
          });
          for (const token of [...model.keys()]) if (token % 2 === 1) model.delete(token);
        } else {
          const token = s % Math.max(1, next);
          if (ring.take(token) !== model.get(token)) return false;
          model.delete(token);
        }
        if (ring.size !== model.size) return false;
      }
      for (let token = 0; token < next; token++) if (ring.get(token) !== model.get(token)) return false;
      return true;
    }),
    { numRuns: 200 },
  );
});
