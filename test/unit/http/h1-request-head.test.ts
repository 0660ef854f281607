import t from 'tap';
import { plainOrigin, plainRequestHead } from '../../../src/http/h1/request-head.js';

t.test('plainOrigin: http origins with a host this client can connect to', async (t) => {
  t.same(plainOrigin('http://127.0.0.1:8080'), { host: '127.0.0.1', port: 8080, authority: '127.0.0.1:8080' });
  t.same(plainOrigin('http://[::1]:9'), { host: '::1', port: 9, authority: '[::1]:9' });
  t.same(plainOrigin('http://fn.openfaas-fn'), { host: 'fn.openfaas-fn', port: 80, authority: 'fn.openfaas-fn' });
  for (const other of ['https://hooks.example.com', 'http://h:0', 'http://h:70000', 'http://user@h', 'http://h/path', 'ftp://h']) {
    t.equal(plainOrigin(other), undefined, `${other} goes to undici`);
  }
});

t.test('plainRequestHead: the head it writes, and the requests it leaves to undici', async (t) => {
  const origin = plainOrigin('http://127.0.0.1:8080')!;
  const body = new TextEncoder().encode('hello');
  t.equal(
    plainRequestHead(origin, { method: 'POST', path: '/fn?a=1', headers: { 'X-Call-Id': 'c1', 'x-many': ['a', 'b'], skipped: undefined }, body }),
    'POST /fn?a=1 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: keep-alive\r\nX-Call-Id: c1\r\nx-many: a\r\nx-many: b\r\ncontent-length: 5\r\n\r\n',
  );
  t.match(plainRequestHead(origin, { method: 'PUT', path: '/', body: null }), /content-length: 0\r\n\r\n$/, 'an empty PUT says so');
  t.notMatch(plainRequestHead(origin, { method: 'GET', path: '/', body: null })!, /content-length/i, 'a GET without a body has no framing');
  t.match(
    plainRequestHead(origin, { method: 'POST', path: '/', headers: { host: 'fn.example', 'content-length': '5' }, body }),
    /^POST \/ HTTP\/1.1\r\nhost: fn.example\r\n/,
    'a Host header replaces the origin',
  );
  const left: Array<[string, Parameters<typeof plainRequestHead>[1]]> = [
    ['HEAD', { method: 'HEAD', path: '/' }],
    ['CONNECT', { method: 'CONNECT', path: '/' }],
    ['a method that is not a token', { method: 'GE T', path: '/' }],
    ['a path with a space', { method: 'GET', path: '/a b' }],
    ['a path not starting with /', { method: 'GET', path: 'http://x/' }],
    ['a streamed body', { method: 'POST', path: '/', body: (async function* () {})() }],
    ['a string body', { method: 'POST', path: '/', body: 'text' }],
    ['headers as an array', { method: 'GET', path: '/', headers: ['a', 'b'] }],
    ['an invalid header name', { method: 'GET', path: '/', headers: { 'bad name': 'x' } }],
    ['a header value with CRLF', { method: 'GET', path: '/', headers: { 'x-a': 'a\r\nx-injected: 1' } }],
    ['a header value above latin1', { method: 'GET', path: '/', headers: { 'x-a': 'ü✓' } }],
    ['a number header value', { method: 'GET', path: '/', headers: { 'x-a': 1 } }],
    ['Connection', { method: 'GET', path: '/', headers: { Connection: 'close' } }],
    ['Transfer-Encoding', { method: 'POST', path: '/', headers: { 'transfer-encoding': 'chunked' } }],
    ['Expect', { method: 'POST', path: '/', headers: { expect: '100-continue' } }],
    ['Upgrade', { method: 'GET', path: '/', headers: { upgrade: 'websocket' } }],
    ['a Content-Length that is not the body length', { method: 'POST', path: '/', headers: { 'content-length': '4' }, body }],
  ];
  // Twice: the second time the names checked before are known (a name refused is never kept).
  for (const round of ['first', 'again']) {
    for (const [what, request] of left) t.equal(plainRequestHead(origin, request), undefined, `${what} goes to undici (${round})`);
  }
});

t.test('plainRequestHead: a name seen before is written as given, with its checks the same', async (t) => {
  const origin = plainOrigin('http://127.0.0.1:8080')!;
  const request = { method: 'POST', path: '/', headers: { 'X-Call-Id': 'c1', 'x-call-id': 'c2', 'Content-Length': '0' }, body: null };
  const first = plainRequestHead(origin, request);
  t.equal(first, 'POST / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nconnection: keep-alive\r\nX-Call-Id: c1\r\nx-call-id: c2\r\ncontent-length: 0\r\n\r\n');
  t.equal(plainRequestHead(origin, request), first, 'the same head again');
  t.equal(plainRequestHead(origin, { method: 'POST', path: '/', headers: { 'Content-Length': '3' }, body: null }), undefined, 'a known name keeps its meaning');
  t.equal(plainRequestHead(origin, { method: 'GET', path: '/', headers: { CONNECTION: 'close' } }), undefined, 'in any case');
});
