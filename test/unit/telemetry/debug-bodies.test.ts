import t from 'tap';
import { debugBody, debugBodyFields, redactHeaders, REDACTED, redactQuery, redactUrl } from '../../../src/telemetry/debug-bodies.js';

const bytes = (s: string) => new TextEncoder().encode(s);

t.test('headers: credentials redacted whatever their case, the rest kept, repeats as arrays', async (t) => {
  const headers = redactHeaders([
    ['Authorization', 'Bearer s3cr3t'],
    ['proxy-authorization', 'Basic abc'],
    ['cookie', 'session=1'],
    ['x-api-key', 'k'],
    ['X-Hub-Signature-256', 'sha256=abc'],
    ['x-webhook-secret', 'whsec_abc'],
    ['x-auth-token', 't'],
    ['content-type', 'text/plain'],
    ['x-multi', 'one'],
    ['x-multi', 'two'],
  ]);
  t.same(headers, {
    authorization: REDACTED,
    'proxy-authorization': REDACTED,
    cookie: REDACTED,
    'x-api-key': REDACTED,
    'x-hub-signature-256': REDACTED,
    'x-webhook-secret': REDACTED,
    'x-auth-token': REDACTED,
    'content-type': 'text/plain',
    'x-multi': ['one', 'two'],
  });
});

t.test('query strings: the values of parameters named as secrets redacted (as in URLs), the rest exactly as it came', async (t) => {
  const cases: Array<[string, string]> = [
    ['api_key=QSECRET1&access_token=QSECRET2', 'api_key=[redacted]&access_token=[redacted]'],
    ['page=2&q=a%20b+c&sig=x&X-Amz-Signature=y&key=z&keyboard=1', 'page=2&q=a%20b+c&sig=[redacted]&X-Amz-Signature=[redacted]&key=[redacted]&keyboard=1'],
    ['?token=t&id=7', '?token=[redacted]&id=7'],
    ['api%5Fkey=encoded&password', 'api%5Fkey=[redacted]&password=[redacted]'],
    ['a=1&&b', 'a=1&&b'],
    ['', ''],
  ];
  for (const [query, shown] of cases) t.equal(redactQuery(query), shown, query);
});

t.test("URLs: the userinfo's password (or a userinfo that is a token) and secret query values redacted, the rest kept", async (t) => {
  const cases: Array<[string, string]> = [
    ['http://cbuser:cbpass@127.0.0.1:19000/cb?token=abc&id=7', 'http://cbuser:[redacted]@127.0.0.1:19000/cb?token=[redacted]&id=7'],
    ['https://ghp_token@hooks.example/x', 'https://[redacted]@hooks.example/x'],
    [
      'https://hooks.example/x?sig=abc&X-Amz-Signature=def&api_key=k&page=2',
      'https://hooks.example/x?sig=[redacted]&X-Amz-Signature=[redacted]&api_key=[redacted]&page=2',
    ],
    ['https://hooks.example/plain?id=1', 'https://hooks.example/plain?id=1'],
    ['not a url', 'not a url'],
  ];
  for (const [url, shown] of cases) t.equal(redactUrl(url), shown, url);
  t.same(
    redactHeaders([['X-Callback-Url', 'http://u:p@cb.example/?token=t']]),
    { 'x-callback-url': 'http://u:[redacted]@cb.example/?token=[redacted]' },
    'the callback URL header too',
  );
});

t.test('a short text body is logged as it is', async (t) => {
  t.same(debugBody(bytes('the request body\nline 2\ttab')), { body: 'the request body\nline 2\ttab', bytes: 27 });
  t.same(debugBody(new Uint8Array()), { body: '', bytes: 0 });
  t.same(debugBody(bytes('héllo ✓')), { body: 'héllo ✓', bytes: 10 });
});

t.test('a long body is cut with a marker, never inside a character', async (t) => {
  t.same(debugBody(bytes('x'.repeat(5000))), { body: `${'x'.repeat(4096)}…[truncated, 5000 bytes in all]`, bytes: 5000 });
  // "é" is two bytes: a cut after 3 bytes would split the second one.
  t.same(debugBody(bytes('éé'), 3), { body: 'é…[truncated, 4 bytes in all]', bytes: 4 });
});

t.test('binary or control characters are shown as base64, never raw', async (t) => {
  t.same(debugBody(new Uint8Array([0, 1, 2, 255])), { body: 'AAEC/w==', encoding: 'base64', bytes: 4 });
  t.same(debugBody(bytes('red \u001b[31m text')), { body: Buffer.from('red \u001b[31m text').toString('base64'), encoding: 'base64', bytes: 14 });
  t.same(debugBody(new Uint8Array([0xff, 0xfe, 0xfd, 0xfc, 0xfb]), 3), { body: '//79…[truncated, 5 bytes in all]', encoding: 'base64', bytes: 5 });
});

t.test('log fields are named after the side', async (t) => {
  t.same(debugBodyFields('request', bytes('hi')), { requestBody: 'hi', requestBytes: 2 });
  t.same(debugBodyFields('response', new Uint8Array([0xff])), { responseBody: '/w==', responseBytes: 1, responseBodyEncoding: 'base64' });
});
