import { validateKey } from '@nats-io/kv/internal';
import t from 'tap';
import { callerRateKey, functionRateKey, kvKeyToken } from '../../../src/flow/rate-keys.js';

/** Keys of the rate-limit bucket: valid NATS KV keys, readable where they can be, never colliding. */

const echo = { name: 'echo', namespace: 'openfaas-fn' };

t.test('DNS labels and plain caller keys stay readable', async (t) => {
  t.equal(functionRateKey(echo), 'fn.openfaas-fn.echo');
  t.equal(callerRateKey(echo, 'tenant_42'), 'key.openfaas-fn.echo.tenant_42');
});

t.test('any caller key becomes one valid token', async (t) => {
  const awkward = ['a.b', 'a b', '', '*', '>', 'é', 'tenant/1', '=x', '..', 'a'.repeat(64), 'a'.repeat(65), 'ü'.repeat(200), '\u0000', 'x'.repeat(10_000)];
  const tokens = new Set<string>();
  for (const key of awkward) {
    const kvKey = callerRateKey(echo, key);
    t.doesNotThrow(() => validateKey(kvKey), JSON.stringify(key.slice(0, 20)));
    t.equal(kvKey.split('.').length, 4, 'exactly one token for the caller key');
    const token = kvKey.split('.')[3]!;
    t.ok(token.length <= 65, 'at most 65 characters');
    t.notOk(tokens.has(token), 'distinct');
    tokens.add(token);
  }
  t.equal(kvKeyToken('a'.repeat(64)), 'a'.repeat(64), '64 plain characters are kept');
  t.match(kvKeyToken('a.'.repeat(20)), /^=[-\w]{54}$/, 'not plain, short: base64url');
  t.match(kvKeyToken('a'.repeat(65)), /^\//, 'plain but long, base64url over 64: a SHA-256');
  t.match(kvKeyToken('x'.repeat(10_000)), /^\/[-\w]{43}$/, 'much longer: a SHA-256');
  t.match(kvKeyToken(''), /^\//, 'the empty key hashes');
});

t.test('the three forms cannot collide: a kept part never starts with = or /', async (t) => {
  // "=YQ" is the base64url form of "a"; the caller key "=YQ" itself is encoded, not kept.
  t.equal(kvKeyToken('a'), 'a');
  t.not(kvKeyToken('=YQ'), kvKeyToken('a'));
  t.not(kvKeyToken('=YQ'), '=YQ');
});

t.test('function and caller keys differ in their token count', async (t) => {
  t.not(functionRateKey({ name: 'b', namespace: 'a' }), callerRateKey({ name: 'a', namespace: 'key' }, 'b'));
  t.equal(functionRateKey({ name: 'a.b', namespace: 'ns' }).split('.').length, 3, 'a dotted name is one token');
});
