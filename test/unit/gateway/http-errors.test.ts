import { PassThrough } from 'node:stream';
import t from 'tap';
import { codeForStatus, oneLine, writeRawRefusal } from '../../../src/gateway/http-errors.js';

t.test('a refusal node or fastify made gets a code by its status', async (t) => {
  const cases: Array<[number, string]> = [
    [400, 'ASYNCFN_ERR_BAD_REQUEST'],
    [404, 'ASYNCFN_ERR_NO_ROUTE'],
    [405, 'ASYNCFN_ERR_METHOD_NOT_ALLOWED'],
    [408, 'ASYNCFN_ERR_REQUEST_TIMEOUT'],
    [413, 'ASYNCFN_ERR_BODY_TOO_LARGE'],
    [414, 'ASYNCFN_ERR_BAD_REQUEST'],
    [415, 'ASYNCFN_ERR_UNSUPPORTED_MEDIA_TYPE'],
    [417, 'ASYNCFN_ERR_BAD_REQUEST'],
    [431, 'ASYNCFN_ERR_HEADERS_TOO_LARGE'],
  ];
  for (const [status, code] of cases) t.equal(codeForStatus(status), code, String(status));
});

t.test('a reason is always one line', async (t) => {
  t.equal(oneLine('a'), 'a\n');
  t.equal(oneLine('a\nb\r\n  c\rd'), 'a; b; c; d\n');
});

t.test('a raw refusal is written in the usual shape, then the socket is closed', async (t) => {
  const socket = new PassThrough();
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  writeRawRefusal(socket, 405, 'method CONNECT not allowed', 'ASYNCFN_ERR_METHOD_NOT_ALLOWED');
  const text = Buffer.concat(chunks).toString();
  t.equal(
    text,
    'HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 27\r\n' +
      'X-Asyncfn-Error: ASYNCFN_ERR_METHOD_NOT_ALLOWED\r\nConnection: close\r\n\r\nmethod CONNECT not allowed\n',
  );
  t.ok(socket.destroyed, 'closed after the answer');
});
