import t from 'tap';
import { confinePathSuffix, MAX_DECODE_ROUNDS, pathSuffixProblem } from '../../../src/functions/index.js';
import { PathRefusedError } from '../../../src/errors.js';

/** Hostile suffixes and the words their one-line reason must contain. */
const REFUSED: Array<[suffix: string, reason: RegExp]> = [
  ['/..', /segment "\.\." is a dot-dot segment, which would leave the function's URL/],
  ['/../figlet', /dot-dot segment/],
  ['/a/..', /dot-dot segment/],
  ['/a/../b', /dot-dot segment/],
  ['/%2e%2e', /segment "%2e%2e" is a dot-dot segment \("\.\." decoded once\)/],
  ['/%2E%2e/admin', /dot-dot segment/],
  ['/%2E%2E', /dot-dot segment/],
  ['/.%2e', /dot-dot segment/],
  ['/%2e.', /dot-dot segment/],
  ['/%252e%252e', /dot-dot segment \("\.\." decoded 2 times\)/],
  ['/%25252e%25252e/x', /dot-dot segment \("\.\." decoded 3 times\)/],
  ['/..;jsessionid=1/x', /dot-dot segment/],
  ['/.', /segment "\." is a dot segment/],
  ['/./x', /dot segment/],
  ['/%2e/x', /dot segment \("\." decoded once\)/],
  ['/a%2fb', /encoded slash \("a\/b" decoded once\)/],
  ['/a%2F..%2Fb', /encoded slash/],
  ['/a%252fb', /encoded slash \("a\/b" decoded 2 times\)/],
  ['/a%5cb', /backslash/],
  ['/a%5C..%5Cb', /backslash/],
  ['/a\\b', /segment "a\\\\b" holds a backslash/],
  ['/\\..\\admin', /backslash/],
  ['/%00', /encoded NUL or control character/],
  ['/a%2500', /encoded NUL or control character \("a\\u0000" decoded 2 times\)/],
  ['/a%0d%0aX-Injected:%20y', /control character/],
  ['/a\u0000b', /space or control character \(code 0\)/],
  ['/a b', /space or control character \(code 32\)/],
  ['/a\tb', /control character \(code 9\)/],
  ['/%zz', /malformed percent-encoding "%zz"/],
  ['/a%', /malformed percent-encoding "%"/],
  ['/a%2', /malformed percent-encoding "%2"/],
  ['/%c0%ae%c0%ae', /overlong UTF-8/],
  ['/%e0%80%ae', /overlong UTF-8/],
  ['/a#b', /"#" or "\?"/],
  ['/a?b', /"#" or "\?"/],
  [`/%${'25'.repeat(MAX_DECODE_ROUNDS)}41`, new RegExp(`percent-encoded more than ${MAX_DECODE_ROUNDS} times`)],
  // Without a leading slash, as a message from elsewhere may carry it.
  ['../x', /dot-dot segment/],
];

/** Suffixes that stay under the function's URL: accepted and passed on unchanged. */
const ACCEPTED = [
  '',
  '/',
  '/a/b',
  '/a/',
  '/a..b',
  '/..a',
  '/a..',
  '/...',
  '/.a',
  '/.well-known/x',
  '/%20x',
  '/a%20b',
  '/100%25',
  '/%2525',
  '/%C3%A9t%C3%A9',
  '/é',
  '//x',
  '/a//b',
  '/a;b=c',
  "/~user/a-b_c.d!$&'()*+,=:@",
  '/%2E%2Ex',
];

t.test('pathSuffixProblem refuses every hostile form with a one-line reason that names it', async (t) => {
  for (const [suffix, reason] of REFUSED) {
    const problem = pathSuffixProblem(suffix);
    t.match(problem, reason, JSON.stringify(suffix));
    t.match(problem ?? '', /^[^\n]+$/, `${JSON.stringify(suffix)}: one line`);
  }
});

t.test('pathSuffixProblem accepts suffixes that stay under the base', async (t) => {
  for (const suffix of ACCEPTED) t.equal(pathSuffixProblem(suffix), undefined, JSON.stringify(suffix));
});

t.test('confinePathSuffix returns the suffix byte for byte, or throws PathRefusedError (400)', async (t) => {
  for (const suffix of ACCEPTED) t.equal(confinePathSuffix(suffix), suffix, JSON.stringify(suffix));
  const err = t.throws(() => confinePathSuffix('/%2e%2e/%2e%2e/admin')) as PathRefusedError;
  t.type(err, PathRefusedError);
  t.equal(err.code, 'ASYNCFN_ERR_PATH_REFUSED');
  t.equal(err.httpStatus, 400);
  t.match(err.message, /^path refused: segment "%2e%2e" is a dot-dot segment/);
});

t.test('a long hostile suffix is quoted shortened in the reason', async (t) => {
  const problem = pathSuffixProblem(`/${'a'.repeat(500)}%2f`);
  t.ok(problem !== undefined && problem.length < 250, `reason of ${problem?.length} characters`);
});
