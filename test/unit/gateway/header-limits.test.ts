import type { Socket } from 'node:net';
import t from 'tap';
import { headerLimitServerOptions } from '../../../src/gateway/header-limits.js';

/** Just enough of a socket to record what the handler writes. */
function recordingSocket(state: { writable?: boolean; destroyed?: boolean } = {}) {
  const written: string[] = [];
  let destroyedWith: unknown;
  const socket = {
    writable: state.writable ?? true,
    destroyed: state.destroyed ?? false,
    write: (text: string) => written.push(text),
    destroy: (err?: unknown) => (destroyedWith = err ?? true),
  };
  return { socket: socket as unknown as Socket, written, destroyed: () => destroyedWith };
}

const error = (code: string) => Object.assign(new Error(code), { code });

t.test('client errors are answered in the gateway format, then the connection is closed', async (t) => {
  const { http, clientErrorHandler } = headerLimitServerOptions({ maxHeaderCount: 100, maxHeaderBytes: 4096 });
  t.same(http, { maxHeaderSize: 4096 }, "node's parser enforces max_header_size");

  const cases: Array<[string, number, string, string, string?]> = [
    ['HPE_HEADER_OVERFLOW', 431, 'request headers exceed the 4096-byte limit (max_header_size)\n', 'ASYNCFN_ERR_HEADERS_TOO_LARGE'],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'the request did not arrive within read_timeout\n', 'ASYNCFN_ERR_REQUEST_TIMEOUT'],
    ['HPE_INVALID_HEADER_TOKEN', 400, 'malformed HTTP request\n', 'ASYNCFN_ERR_BAD_REQUEST'],
    // llhttp's reason is kept, on one line and in printable ASCII.
    ['HPE_INVALID_HEADER_TOKEN', 400, 'malformed HTTP request: Invalid header value char\n', 'ASYNCFN_ERR_BAD_REQUEST', 'Invalid header value char\r\n\u00ff'],
  ];
  for (const [code, status, body, errorCode, reason] of cases) {
    const s = recordingSocket();
    const err = Object.assign(error(code), reason === undefined ? {} : { reason });
    clientErrorHandler(err, s.socket);
    const response = s.written.join('');
    t.match(response, new RegExp(`^HTTP/1\\.1 ${status} `), `${code}: ${status}`);
    t.match(response, /\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
    t.match(response, new RegExp(`\\r\\nContent-Length: ${Buffer.byteLength(body)}\\r\\n`));
    t.match(response, /\r\nConnection: close\r\n/);
    t.match(response, `\r\nX-Asyncfn-Error: ${errorCode}\r\n`);
    t.ok(response.endsWith(`\r\n\r\n${body}`), `${code}: one line of text`);
    t.equal(s.destroyed(), err);
  }

  const reset = recordingSocket();
  clientErrorHandler(error('ECONNRESET'), reset.socket);
  t.same(reset.written, [], 'a reset connection gets nothing');
  const gone = recordingSocket({ destroyed: true });
  clientErrorHandler(error('HPE_HEADER_OVERFLOW'), gone.socket);
  t.same(gone.written, [], 'a destroyed socket gets nothing');
  const closing = recordingSocket({ writable: false });
  clientErrorHandler(error('HPE_HEADER_OVERFLOW'), closing.socket);
  t.same(closing.written, [], 'a socket that cannot be written is only destroyed');
  t.ok(closing.destroyed());
});
