import t from 'tap';
import { PathRefusedError } from '../../../src/errors.js';
import { BadRequestError, callbackUrlFrom, callIdFrom, parseInvocationTarget } from '../../../src/gateway/invocation-target.js';

t.test('the raw URL splits into name, path suffix and query, still encoded', async (t) => {
  t.same(parseInvocationTarget('/async-function/echo', '/async-function/'), { name: 'echo', path: '', query: '' });
  t.same(parseInvocationTarget('/function/echo/a/b%20c?x=%20&y', '/function/'), { name: 'echo', path: '/a/b%20c', query: 'x=%20&y' });
  t.same(
    parseInvocationTarget('/function/echo/a..b?q=../..', '/function/'),
    { name: 'echo', path: '/a..b', query: 'q=../..' },
    "dots in the query are the function's business",
  );
  t.same(parseInvocationTarget('/function/echo.team-a/?q', '/function/'), { name: 'echo.team-a', path: '/', query: 'q' });
  t.same(
    parseInvocationTarget('http://aaachaos/function/echo/a?q', '/function/'),
    { name: 'echo', path: '/a', query: 'q' },
    'absolute form: the name comes from the path',
  );
  t.throws(() => parseInvocationTarget('/function/', '/function/'), BadRequestError);
  t.throws(() => parseInvocationTarget('/function/?x=1', '/function/'), BadRequestError);
});

t.test("X-Call-Id: the caller's is kept, a missing one becomes a UUID, a bad one is refused", async (t) => {
  t.equal(callIdFrom('abc-123_X.y=z'), 'abc-123_X.y=z');
  t.match(callIdFrom(undefined), /^[0-9a-f-]{36}$/);
  t.match(callIdFrom(''), /^[0-9a-f-]{36}$/);
  t.not(callIdFrom(undefined), callIdFrom(undefined), 'each generated id is new');
  t.throws(() => callIdFrom('has space'), BadRequestError);
  t.throws(() => callIdFrom('a/b'), BadRequestError);
  t.throws(() => callIdFrom('x'.repeat(129)), BadRequestError);
  t.equal(callIdFrom('x'.repeat(128)), 'x'.repeat(128));
  t.equal(callIdFrom('batch.42.item-7'), 'batch.42.item-7', 'dots between parts are fine');
  for (const bad of ['.a', 'a.', 'a..b', '.']) t.throws(() => callIdFrom(bad), BadRequestError, `"${bad}" would be an invalid KV key`);
});

t.test('X-Callback-Url must be one absolute http(s) URL', async (t) => {
  t.equal(callbackUrlFrom(undefined), undefined);
  t.equal(callbackUrlFrom('http://cb.test:8080/hook?x=1'), 'http://cb.test:8080/hook?x=1');
  t.equal(callbackUrlFrom('https://cb.test'), 'https://cb.test/');
  t.throws(() => callbackUrlFrom('/relative'), { message: /not a valid absolute URL/ });
  t.throws(() => callbackUrlFrom('file:///etc/passwd'), { message: /must use http or https, not file/ });
  t.throws(() => callbackUrlFrom(['http://a.test', 'http://b.test']), { message: /given once/ });
  for (let i = 0; i < 2; i++) {
    t.equal(callbackUrlFrom('HTTPS://CB.test'), 'https://cb.test/', `read again (${i + 1}): the same URL, normalised`);
    t.throws(() => callbackUrlFrom('file:///etc/passwd'), { message: /not file/ }, `refused again (${i + 1})`);
  }
  // More distinct URLs than are remembered: every one still reads right.
  const wrong = Array.from({ length: 1_100 }, (_, i) => `http://cb.test/${i}`).filter((url) => callbackUrlFrom(url) !== url);
  t.same(wrong, []);
  const long = `http://cb.test/${'x'.repeat(300)}`;
  t.equal(callbackUrlFrom(long), long, 'a long URL is read, not remembered');
});

t.test('a path suffix that could leave the function is refused before anything resolves it', async (t) => {
  for (const url of [
    '/function/echo/../figlet',
    '/async-function/echo/../chaos?status=418',
    '/function/echo/%2e%2e/%2e%2e/admin',
    '/function/echo/../../system/functions',
    '/function/echo/a%2fb',
    '/function/echo/%zz',
  ]) {
    const prefix = url.startsWith('/function/') ? '/function/' : '/async-function/';
    t.throws(() => parseInvocationTarget(url, prefix), PathRefusedError, url);
  }
});
