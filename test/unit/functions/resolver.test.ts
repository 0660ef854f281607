import t from 'tap';
import { InvalidFunctionNameError } from '../../../src/errors.js';
import { functionUrl, isUnderBaseUrl, parseFunctionRef, type ResolvedFunction } from '../../../src/functions/index.js';

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
    ['http://h/echo', '/a%20b/%C3%A9/a..b/', 'q=%C3%A9&x=a+b&flag', 'http://h/echo/a%20b/%C3%A9/a..b/?q=%C3%A9&x=a+b&flag'],
    ['http://h/echo', '/..a/%2525', 'q=../..', 'http://h/echo/..a/%2525?q=../..'],
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

t.test('functionUrl refuses a suffix that would leave the base URL, whatever the registry', async (t) => {
  const bases = [
    'http://h:9000/echo', // functions file
    'http://echo.openfaas-fn.svc.cluster.local:8080/', // URL template
    'http://gateway:8080/function/echo.openfaas-fn', // OpenFaaS gateway (gateway_invoke)
  ];
  const hostile = ['/../figlet', '/..', '/%2e%2e/%2e%2e/admin', '/../../system/functions', '/a/%252e%252e', '/a%2fb', '/a\\b', '/./x', '/%00', '/%zz'];
  for (const base of bases) {
    for (const suffix of hostile) {
      t.throws(() => functionUrl(fn(base), suffix, ''), { name: 'PathRefusedError', code: 'ASYNCFN_ERR_PATH_REFUSED', httpStatus: 400 }, `${base} + ${suffix}`);
    }
    // The same without the leading slash, as a foreign message might carry it.
    t.throws(() => functionUrl(fn(base), '../x', ''), { code: 'ASYNCFN_ERR_PATH_REFUSED' }, `${base} + ../x`);
  }
});

t.test('isUnderBaseUrl: the joined URL, read as undici reads it, stays on the origin under the base path', async (t) => {
  const cases: Array<[base: string, url: string, want: boolean]> = [
    ['http://h:9000/echo', 'http://h:9000/echo', true],
    ['http://h:9000/echo', 'http://h:9000/echo/a?x=1', true],
    ['http://h:9000/echo//', 'http://h:9000/echo/a', true],
    ['http://h:9000/', 'http://h:9000//x', true],
    ['http://h:9000/echo', 'http://h:9000/echo/../figlet', false],
    ['http://h:9000/echo', 'http://h:9000/echo/%2e%2e/admin', false],
    ['http://h:9000/echo', 'http://h:9000/echo\\..\\admin', false],
    ['http://h:9000/echo', 'http://h:9000/echoes', false],
    ['http://h:9000/echo', 'http://other:9000/echo/a', false],
    ['http://g:8080/function/echo.ns', 'http://g:8080/function/echo.ns/../../system/functions', false],
    ['http://h:9000/echo', 'not a url', false],
  ];
  for (const [base, url, want] of cases) t.equal(isUnderBaseUrl(base, url), want, `${url} under ${base}`);
});
