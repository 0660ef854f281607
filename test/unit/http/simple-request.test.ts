import fc from 'fast-check';
import t from 'tap';
import { isFieldValue, isToken } from '../../../src/http/fields.js';
import { MORE, NOT_SIMPLE, readSimpleRequestHead, type SimpleRequestHead } from '../../../src/http/h1/simple-request.js';
import { assertProperty, fuzzRun, headerLine } from '../../helpers/fuzz.js';

const PREFIX = '/async-function/';
const MAX = 16_384;

function read(text: string, max = MAX): ReturnType<typeof readSimpleRequestHead> {
  return readSimpleRequestHead(Buffer.from(text, 'latin1'), PREFIX, max);
}

function head(lines: string[], body = ''): string {
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const PLAIN = ['POST /async-function/echo?a=1 HTTP/1.1', 'Host: gw', 'X-Callback-Url: http://127.0.0.1:9/cb', 'Content-Length: 5'];

t.test('the plain request: its head as node shows it, and where its body starts', async (t) => {
  const text = head(PLAIN, 'hello');
  const reading = read(text) as SimpleRequestHead;
  t.equal(reading.method, 'POST');
  t.equal(reading.url, '/async-function/echo?a=1');
  t.equal(reading.httpVersion, '1.1');
  t.same(reading.headers, { host: 'gw', 'x-callback-url': 'http://127.0.0.1:9/cb', 'content-length': '5' });
  t.same(reading.rawHeaders, ['Host', 'gw', 'X-Callback-Url', 'http://127.0.0.1:9/cb', 'Content-Length', '5']);
  t.equal(reading.contentLength, 5);
  t.equal(text.slice(reading.headBytes), 'hello');
});

t.test('spaces and tabs around a value are not part of it; other white space is not simple', async (t) => {
  const reading = read(head(['POST /async-function/x HTTP/1.1', 'Host:gw', 'X-A: \t v w \t', 'Content-Length: \t 0  '])) as SimpleRequestHead;
  t.same(reading.headers, { host: 'gw', 'x-a': 'v w', 'content-length': '0' });
  t.equal(read(head(['POST /async-function/x HTTP/1.1', 'Host: gw', 'Content-Length: 5\xa0'])), NOT_SIMPLE, 'NBSP, which String#trim takes');
  t.equal(read(head(['POST /async-function/x HTTP/1.1', 'Host: gw', 'Content-Length: 5\x0b'])), NOT_SIMPLE, 'a vertical tab');
});

t.test('an unfinished head asks for more until it is longer than the limit', async (t) => {
  t.equal(read('POST /async-function/x HTTP/1.1\r\nHost: gw\r\n'), MORE);
  t.equal(read(`POST /async-function/x HTTP/1.1\r\nX-Long: ${'a'.repeat(200)}`, 100), NOT_SIMPLE);
  t.equal(read(head([...PLAIN, `X-Long: ${'a'.repeat(200)}`]), 100), NOT_SIMPLE, 'a whole head over the limit');
  // The blank line split across reads is found from where the last search ended.
  const text = Buffer.from(head(PLAIN, 'hello'), 'latin1');
  const end = text.indexOf('\r\n\r\n');
  t.equal(readSimpleRequestHead(text.subarray(0, end + 2), PREFIX, MAX), MORE);
  t.equal((readSimpleRequestHead(text, PREFIX, MAX, end + 2 - 3) as SimpleRequestHead).headBytes, end + 4);
});

t.test('an unfinished head that cannot become one of the subset is left to node:http at once', async (t) => {
  const cases: Array<[string, string]> = [
    ['another method', 'GET /healthz HTTP/1.1\r\nHost: gw\r\n'],
    ['the start of another method', 'GE'],
    ['another route', 'POST /function/x HTTP/1.1\r\n'],
    ['a NUL', '\x00'],
    ['lines ended by LF alone', 'POST /async-function/x HTTP/1.1\nHost: gw\n\n'],
    ['a blank line of LF alone', 'POST /async-function/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\nhello'],
    ['a control byte in a value', 'POST /async-function/x HTTP/1.1\r\nX-A: 1\x002'],
    ['obs-text in a value', 'POST /async-function/x HTTP/1.1\r\nX-A: caf\xe9'],
  ];
  for (const [what, text] of cases) t.equal(read(text), NOT_SIMPLE, what);
  for (const partial of ['P', 'POST /async', 'POST /async-function/x HTTP/1.1\r', 'POST /async-function/x HTTP/1.1\r\nHost: gw\r\n\r']) {
    t.equal(read(partial), MORE, `${JSON.stringify(partial)} may still become one`);
  }
  // Read in pieces, each search from where the last one ended: a CRLF cut between its CR and its LF is no bare LF.
  const text = Buffer.from('POST /async-function/x HTTP/1.1\r\nHost: gw\r\n', 'latin1');
  const cr = text.indexOf('\r\nHost');
  t.equal(readSimpleRequestHead(text.subarray(0, cr + 1), PREFIX, MAX), MORE);
  t.equal(readSimpleRequestHead(text, PREFIX, MAX, cr + 1 - 3), MORE, 'its LF, read after its CR');
});

t.test('everything outside the subset is left to node:http', async (t) => {
  const without = (name: string) => PLAIN.filter((line) => !line.startsWith(`${name}:`));
  const cases: Array<[string, string]> = [
    ['GET', head(['GET /async-function/x HTTP/1.1', 'Host: gw'])],
    ['lower-case method', head(['post /async-function/x HTTP/1.1', 'Host: gw', 'Content-Length: 0'])],
    ['HTTP/1.0', head(['POST /async-function/x HTTP/1.0', 'Host: gw', 'Content-Length: 0'])],
    ['another route', head(['POST /function/x HTTP/1.1', 'Host: gw', 'Content-Length: 0'])],
    ['absolute form', head(['POST http://gw/async-function/x HTTP/1.1', 'Host: gw', 'Content-Length: 0'])],
    ['two spaces', head(['POST  /async-function/x HTTP/1.1', 'Host: gw', 'Content-Length: 0'])],
    ['a fragment', head(['POST /async-function/x#y HTTP/1.1', 'Host: gw', 'Content-Length: 0'])],
    ['a quote in the target', head(['POST /async-function/x"y HTTP/1.1', 'Host: gw', 'Content-Length: 0'])],
    ['non-ASCII in the target', head(['POST /async-function/\xe9 HTTP/1.1', 'Host: gw', 'Content-Length: 0'])],
    ['no header at all', 'POST /async-function/x HTTP/1.1\r\n\r\n'],
    ['no Host', head(without('Host'))],
    ['no Content-Length', head(without('Content-Length'))],
    ['Content-Length with a sign', head([...without('Content-Length'), 'Content-Length: +5'])],
    ['Content-Length of 11 digits', head([...without('Content-Length'), 'Content-Length: 00000000005'])],
    ['Content-Length, then a tab (llhttp refuses it)', head([...without('Content-Length'), 'Content-Length: 5\t'])],
    ['Content-Length listed', head([...without('Content-Length'), 'Content-Length: 5, 5'])],
    ['two Content-Lengths', head([...PLAIN, 'content-length: 5'])],
    ['two Hosts', head([...PLAIN, 'Host: other'])],
    ['a repeated field', head([...PLAIN, 'X-A: 1', 'x-a: 2'])],
    ['Transfer-Encoding', head([...PLAIN, 'Transfer-Encoding: chunked'])],
    ['Expect', head([...PLAIN, 'Expect: 100-continue'])],
    ['Upgrade', head([...PLAIN, 'Upgrade: h2c'])],
    ['Connection: close', head([...PLAIN, 'Connection: close'])],
    ['Connection: upgrade', head([...PLAIN, 'Connection: keep-alive, Upgrade'])],
    ['Proxy-Connection (llhttp reads it as Connection)', head([...PLAIN, 'Proxy-Connection: close'])],
    ['Proxy-Connection: keep-alive', head([...PLAIN, 'Proxy-Connection: keep-alive'])],
    ['Set-Cookie', head([...PLAIN, 'Set-Cookie: a=1'])],
    ['__proto__', head([...PLAIN, '__proto__: x'])],
    ['space before the colon', head([...PLAIN, 'X-A : 1'])],
    ['a folded line', head([...PLAIN, 'X-A: 1', ' 2'])],
    ['no colon', head([...PLAIN, 'X-A'])],
    ['an empty name', head([...PLAIN, ': 1'])],
    ['a bare LF in a value', head([...PLAIN, 'X-A: 1\n2'])],
    ['a bare CR in a value', head([...PLAIN, 'X-A: 1\r2'])],
    ['a NUL in a value', head([...PLAIN, 'X-A: 1\x002'])],
    ['obs-text in a value', head([...PLAIN, 'X-A: caf\xe9'])],
    ['a DEL in a value', head([...PLAIN, 'X-A: 1\x7f2'])],
    ['a DEL in a name', head([...PLAIN, 'X-A\x7f: 1'])],
    ['a name with a slash', head([...PLAIN, 'X/A: 1'])],
  ];
  for (const [what, text] of cases) t.equal(read(text), NOT_SIMPLE, what);
  t.not(read(head([...PLAIN, 'Connection: Keep-Alive'])), NOT_SIMPLE, 'Connection: keep-alive is simple');
});

t.test('property: extra header lines are taken exactly when each is a token, a colon and a value of HTAB and visible ASCII', async (t) => {
  const line = headerLine();
  /** Names the subset treats apart (framing, repeats, node's own), kept out so that only the line's shape decides. */
  const special = /^(host|content-length|transfer-encoding|expect|upgrade|connection|set-cookie|__proto__|x-callback-url)$/i;
  await assertProperty(
    fuzzRun(t, 'simple request header lines', 1000),
    fc.property(fc.array(line, { minLength: 1, maxLength: 4 }), (extra) => {
      const block = extra.join('\r\n');
      const lines = block.split('\r\n');
      if (lines.includes('') || block.endsWith('\r')) return true; // an empty line ends the head
      const names = lines.map((l) => l.slice(0, Math.max(0, l.indexOf(':'))).toLowerCase());
      if (names.some((n) => special.test(n)) || new Set(names).size < names.length) return true;
      const valid = lines.every((l) => {
        const colon = l.indexOf(':');
        const value = l.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
        return colon > 0 && isToken(l.slice(0, colon)) && isFieldValue(value) && !/[\x7f-\xff]/.test(value);
      });
      const reading = read(`${PLAIN.join('\r\n')}\r\n${block}\r\n\r\nhello`);
      return (reading !== NOT_SIMPLE && reading !== MORE) === valid;
    }),
  );
  t.pass('taken exactly when every line is valid');
});
