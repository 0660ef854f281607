import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../../../src/errors.js';
import { basicAuthenticator, bearerAuthenticator, challenge, loadGatewayAuth, parseBasic, parseBearer, routeGroup } from '../../../src/gateway/auth/index.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function secretsDir(t: Test, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

t.test('Basic credentials are parsed per RFC 7617', async (t) => {
  t.same(parseBasic(basic('admin', 'pa:ss')), { user: 'admin', password: 'pa:ss' }, 'the password may hold colons');
  t.same(parseBasic(`basic ${Buffer.from('a:b').toString('base64')}`), { user: 'a', password: 'b' }, 'the scheme is case-insensitive');
  t.same(parseBasic(basic('', '')), { user: '', password: '' });
  t.equal(parseBasic(`Basic ${Buffer.from('no-colon').toString('base64')}`), undefined, 'no colon: not credentials');
  t.equal(parseBasic('Basic !!!'), undefined, 'not base64');
  t.equal(parseBasic('Bearer abc'), undefined, 'another scheme');
  t.equal(parseBasic('Basic'), undefined, 'no credentials');
});

t.test('Bearer tokens are parsed per RFC 6750', async (t) => {
  t.equal(parseBearer('Bearer abc.DEF-123_~+/='), 'abc.DEF-123_~+/=');
  t.equal(parseBearer('bearer   tok'), 'tok');
  t.equal(parseBearer('Bearer a b'), undefined, 'a token holds no space');
  t.equal(parseBearer(basic('a', 'b')), undefined);
});

t.test('basic auth accepts only the exact pair, whatever part is wrong', async (t) => {
  const auth = basicAuthenticator('admin', 'correct horse');
  t.equal(auth.verify(basic('admin', 'correct horse')), 'ok');
  t.equal(auth.verify(undefined), 'missing');
  t.equal(auth.verify(''), 'missing');
  t.equal(auth.verify(basic('admin', 'correct horsE')), 'invalid', 'a password of the same length, one byte off');
  t.equal(auth.verify(basic('admin', 'correct hors')), 'invalid', 'a prefix of the password');
  t.equal(auth.verify(basic('admin', 'correct horse ')), 'invalid', 'the password plus a byte');
  t.equal(auth.verify(basic('Admin', 'correct horse')), 'invalid', 'user names are case-sensitive');
  t.equal(auth.verify('Bearer correct horse'), 'invalid', 'another scheme');
  t.equal(challenge(auth, 'missing'), 'Basic realm="asyncfn"');
});

t.test('bearer auth accepts every listed token (rotation) and nothing else', async (t) => {
  const auth = bearerAuthenticator(['old-token-1', 'new-token-2']);
  t.equal(auth.verify('Bearer old-token-1'), 'ok');
  t.equal(auth.verify('Bearer new-token-2'), 'ok');
  t.equal(auth.verify('Bearer new-token-3'), 'invalid', 'same length, one byte off');
  t.equal(auth.verify('Bearer new-token-'), 'invalid');
  t.equal(auth.verify(basic('new-token-2', '')), 'invalid');
  t.equal(auth.verify(undefined), 'missing');
  t.equal(challenge(auth, 'missing'), 'Bearer realm="asyncfn"');
  t.equal(challenge(auth, 'invalid'), 'Bearer realm="asyncfn", error="invalid_token"');
  t.throws(() => bearerAuthenticator([]));
});

t.test('routes fall into groups by the matched route pattern; anything new is admin', async (t) => {
  const cases: Array<[string, string | undefined, string]> = [
    ['GET', '/healthz', 'open'],
    ['HEAD', '/readyz', 'open'],
    ['GET', '/metrics', 'open'],
    ['GET', undefined, 'open'],
    ['GET', '/system/functions', 'admin'],
    ['GET', '/system/invocations/:callId', 'admin'],
    ['DELETE', '/async-function/*', 'admin'],
    ['GET', '/async-function/*', 'admin'],
    ['GET', '/async-function/:callId', 'admin'],
    ['PUT', '/async-function/*', 'admin'],
    ['POST', '/async-function/*', 'invoke'],
    ['GET', '/function/*', 'invoke'],
    ['DELETE', '/function/*', 'invoke'],
    ['GET', '/some-future-route', 'admin'],
  ];
  for (const [method, url, group] of cases) t.equal(routeGroup(method, url), group, `${method} ${url ?? '(no route)'}`);
});

t.test('a progress report (POST /async-function/<id>/progress with sig) is open: its signature is checked by the route', async (t) => {
  t.equal(routeGroup('POST', '/async-function/*', '/async-function/c1/progress?exp=1&sig=abc'), 'open');
  t.equal(routeGroup('POST', '/async-function/*', '/async-function/fn/progress'), 'invoke', 'no sig: an invocation on the path /progress');
  t.equal(routeGroup('POST', '/async-function/*', '/async-function/fn/progress/x?sig=abc'), 'invoke', 'a longer path: an invocation');
  t.equal(routeGroup('GET', '/async-function/*', '/async-function/c1/progress?sig=abc'), 'admin', 'only POST reports');
  t.equal(routeGroup('POST', '/function/*', '/function/c1/progress?sig=abc'), 'invoke', 'never on the sync route');
});

t.test('auth off reads no secret file', async (t) => {
  const auth = await loadGatewayAuth({ secretMountPath: '/nonexistent', basicAuth: false, invokeAuth: 'none' });
  t.equal(auth.admin, undefined);
  t.equal(auth.invoke, undefined);
});

t.test('the secrets are read once, trimmed, and checked', async (t) => {
  const dir = await secretsDir(t, {
    'basic-auth-user': 'admin\n',
    'basic-auth-password': '  s3cret\n',
    'invoke-tokens': '# rotated 2025-01\nold-token\n\nnew-token\n',
  });
  const both = await loadGatewayAuth({ secretMountPath: dir, basicAuth: true, invokeAuth: 'basic' });
  t.equal(both.admin?.verify(basic('admin', 's3cret')), 'ok');
  t.equal(both.invoke, both.admin, 'invoke_auth=basic uses the same pair');

  const bearer = await loadGatewayAuth({ secretMountPath: dir, basicAuth: false, invokeAuth: 'bearer' });
  t.equal(bearer.admin, undefined, 'basic_auth off: /system stays open');
  t.equal(bearer.invoke?.verify('Bearer old-token'), 'ok');
  t.equal(bearer.invoke?.verify('Bearer new-token'), 'ok');
  t.equal(bearer.invoke?.verify('Bearer # rotated 2025-01'), 'invalid', 'comments are not tokens');
});

t.test('missing or empty secret files stop startup, every one named with its setting', async (t) => {
  const empty = await secretsDir(t, {});
  const err = await loadGatewayAuth({ secretMountPath: empty, basicAuth: true, invokeAuth: 'bearer' }).catch((e: unknown) => e);
  t.type(err, ConfigError);
  const problems = (err as ConfigError).problems;
  t.same(problems, [
    `basic_auth=true: secret file ${join(empty, 'basic-auth-user')} does not exist`,
    `basic_auth=true: secret file ${join(empty, 'basic-auth-password')} does not exist`,
    `invoke_auth=bearer: secret file ${join(empty, 'invoke-tokens')} does not exist`,
  ]);

  const blank = await secretsDir(t, { 'basic-auth-user': 'admin', 'basic-auth-password': '\n', 'invoke-tokens': '# none yet\n' });
  const err2 = await loadGatewayAuth({ secretMountPath: blank, basicAuth: false, invokeAuth: 'basic' }).catch((e: unknown) => e);
  t.same((err2 as ConfigError).problems, [`invoke_auth=basic: secret file ${join(blank, 'basic-auth-password')} is empty`]);
  const err3 = await loadGatewayAuth({ secretMountPath: blank, basicAuth: false, invokeAuth: 'bearer' }).catch((e: unknown) => e);
  t.same((err3 as ConfigError).problems, [`invoke_auth=bearer: secret file ${join(blank, 'invoke-tokens')} has no values`]);
  t.notMatch((err2 as Error).message, /admin/, 'secret contents never appear in the message');
});
