import t from 'tap';
import { BadRequestError } from '../../../src/errors.js';
import { inFlightRequestOf } from '../../../src/gateway/routes/inflight.js';

t.test('GET /system/inflight query: function and limit, each optional', async (t) => {
  t.same(inFlightRequestOf({}), { function: undefined });
  t.same(inFlightRequestOf({ function: 'fn.team' }), { function: 'fn.team' });
  t.same(inFlightRequestOf({ function: 'fn', limit: '2000' }), { function: 'fn', limit: 2000 });
  t.same(inFlightRequestOf({ limit: '1' }), { function: undefined, limit: 1 });
});

t.test('a bad query is a 400 naming what is wrong', async (t) => {
  const bad = (query: Record<string, unknown>, message: RegExp) => {
    let error: unknown;
    try {
      inFlightRequestOf(query);
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof BadRequestError, `${JSON.stringify(query)} is refused`);
    t.match((error as Error | undefined)?.message, message);
  };
  bad({ limit: '0' }, /limit must be a whole number from 1 to 2000/);
  bad({ limit: '2001' }, /limit must be a whole number from 1 to 2000/);
  bad({ limit: '1.5' }, /limit must be a whole number/);
  bad({ limit: 'ten' }, /limit must be a whole number/);
  bad({ limit: ['1', '2'] }, /limit must be a whole number/);
  bad({ function: '' }, /function must be one function name/);
  bad({ function: ['a', 'b'] }, /function must be one function name/);
  bad({ fn: 'a' }, /unknown parameter fn/);
});
