import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import type { Test } from 'tap';

/** One HTTP/1.1 response as it came off the wire. */
export interface RawResponse {
  readonly status: number;
  /** Header fields in order, names lower-cased; repeated names repeat. */
  readonly fields: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
  /** First value of a header, undefined when absent. */
  header(name: string): string | undefined;
}

/**
 * Sends `head` (request line and header lines, without the blank line) and `body` over a fresh
 * TCP connection, byte for byte: for headers no HTTP client would send (hop-by-hop fields,
 * hundreds of fields, bare CR). Resolves with the first response once it is complete.
 */
export function rawRequest(url: string, head: string, body = ''): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (result: RawResponse | Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const tryParse = (ended: boolean): void => {
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) {
        if (ended) finish(new Error(`connection closed before a complete response: ${JSON.stringify(buffer.toString('latin1'))}`));
        return;
      }
      const { status, fields, header } = readResponseHead(buffer.toString('latin1', 0, end));
      const rest = buffer.subarray(end + 4);
      let text: string | undefined;
      const length = header('content-length');
      if (length !== undefined) {
        if (rest.length >= Number(length)) text = rest.subarray(0, Number(length)).toString('utf8');
      } else if (header('transfer-encoding') === 'chunked') {
        text = dechunk(rest);
      } else if (ended) {
        text = rest.toString('utf8');
      }
      if (text === undefined) {
        if (ended) finish(new Error('connection closed mid-body'));
        return;
      }
      finish({ status, fields, body: text, header });
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('error', (err) => (buffer.length > 0 ? tryParse(true) : finish(err)));
    socket.write(`${head}\r\n\r\n${body}`);
  });
}

/** A response's status line and header block (without the blank line), as {@link RawResponse} shows them. */
export function readResponseHead(head: string): Omit<RawResponse, 'body'> {
  const [statusLine, ...lines] = head.split('\r\n');
  const fields = lines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  });
  return { status: Number(statusLine!.split(' ')[1]), fields, header: (name: string) => fields.find(([n]) => n === name)?.[1] };
}

/** The body of a complete chunked message, or undefined while chunks are still missing. */
function dechunk(data: Buffer): string | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(parts).toString('utf8');
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** A TCP server standing in for an HTTP server, for answers no HTTP server library would write. */
export interface RawHttpServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Connections accepted so far. */
  connections(): number;
}

/**
 * Calls `answer` with each connection's socket (and its 1-based number) once its first bytes
 * arrive, the request; what `answer` writes is the server's answer, byte for byte. Closed at the
 * end of `t`.
 */
export async function startRawHttpServer(t: Test, answer: (socket: Socket, connection: number) => void): Promise<RawHttpServer> {
  let connections = 0;
  const server = createServer((socket) => {
    const connection = (connections += 1);
    socket.on('error', () => undefined);
    socket.once('data', () => answer(socket, connection));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}
