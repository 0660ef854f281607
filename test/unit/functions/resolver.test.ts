import t from 'tap';
import { InvalidFunctionNameError } from '../../../src/errors.js';
import { functionUrl, parseFunctionRef, type ResolvedFunction } from '../../../src/functions/index.js';

t.test('parseFunctionRef accepts name and name.namespace', async (t) => {
  const cases: Array<[string, { name: string; namespace: string }]> = [
    ['echo', { name: 'echo', namespace: 'openfaas-fn' }],
    ['echo.staging', { name: 'echo', namespace: 'staging' }],
    ['a', { name: 'a', namespace: 'openfaas-fn' }],
    ['0', { name: '0', namespace: 'openfaas-fn' }],
    ['my-fn-2.team-a', { name: 'my-fn-2', namespace: 'team-a' }],
    ['x'.repeat(63), { name: 'x'.repeat(63), namespace: 'openfaas-fn' }],
    [`f.${'n'.repeat(63)}`, { name: 'f', namespace: 'n'.repeat(63) }],
  ];
  for (const [raw, want] of cases) t.same(parseFunctionRef(raw, 'openfaas-fn'), want, raw);
});

t.test('parseFunctionRef rejects names that are not DNS-1123 labels', async (t) => {
  const invalid = [
    '',
    'UPPER',
    'Echo',
    'a..b',
    '-x',
    'x-',
    'x'.repeat(64),
    `f.${'n'.repeat(64)}`,
    'a.b.c',
    'a.',
    '.a',
    'under_score',
    'sp ace',
    'a/b',
    'é',
    'echo.Staging',
  ];
  for (const raw of invalid) {
    const err = t.throws(() => parseFunctionRef(raw, 'openfaas-fn'), InvalidFunctionNameError, JSON.stringify(raw));
    t.match(err, { httpStatus: 400, functionName: raw, code: 'ASYNCFN_ERR_INVALID_FUNCTION_NAME' });
  }
});

const fn = (url: string): ResolvedFunction => ({ name: 'f', namespace: 'ns', url, annotations: {} });

t.test('functionUrl joins base, suffix and query without a double slash', async (t) => {
  const cases: Array<[base: string, suffix: string, query: string, want: string]> = [
    ['http://h:9000/echo', '', '', 'http://h:9000/echo'],
    ['http://h:9000/echo', '/a/b', 'a=1', 'http://h:9000/echo/a/b?a=1'],
    ['http://h:9000/echo/', '/a/b', '', 'http://h:9000/echo/a/b'],
    ['http://h:9000/echo//', '/a', '', 'http://h:9000/echo/a'],
    ['http://h:9000/echo/', '', '', 'http://h:9000/echo/'],
    ['http://h:9000/', '/a', '', 'http://h:9000/a'],
    ['http://h:9000/', '', 'x=1', 'http://h:9000/?x=1'],
    ['http://h:9000', '/a', '', 'http://h:9000/a'],
    ['http://h:9000/echo', 'a', '', 'http://h:9000/echo/a'],
    ['http://h:9000/echo', '/', '', 'http://h:9000/echo/'],
    // the suffix and query are passed on exactly as received
    ['http://h/echo', '/a%20b/%2F', 'q=%C3%A9&x=a+b&flag', 'http://h/echo/a%20b/%2F?q=%C3%A9&x=a+b&flag'],
    ['http://h/echo', '', '?a=1', 'http://h/echo?a=1'],
    // a query on the base URL (e.g. a key) is kept, the caller's follows it
    ['http://h/echo?code=k', '/p', 'a=1', 'http://h/echo/p?code=k&a=1'],
    ['http://h/echo?code=k', '', '', 'http://h/echo?code=k'],
    ['http://h/echo#frag', '/p', '', 'http://h/echo/p'],
  ];
  for (const [base, suffix, query, want] of cases) {
    t.equal(functionUrl(fn(base), suffix, query), want, `${base} + ${suffix} + ${query}`);
  }
});
