import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { Test } from 'tap';

/** One response read off a raw connection. */
export interface ConnectionResponse {
  readonly status: number;
  /** Header fields in order, names lower-cased. */
  readonly fields: ReadonlyArray<readonly [string, string]>;
  readonly body: string;
  header(name: string): string | undefined;
}

/**
 * One TCP connection to an HTTP server, written byte for byte, its responses read in order
 * (framed by Content-Length, as the gateway frames every answer): for pipelining, requests in
 * pieces and connection ends, which no HTTP client library lets a test control.
 */
export class RawConnection {
  readonly socket: Socket;
  /** Resolves when the server has closed the connection (its FIN, or a reset). */
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  readonly #responses: ConnectionResponse[] = [];
  readonly #waiting: Array<(response: ConnectionResponse | undefined) => void> = [];
  #ended = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      const end = (): void => {
        this.#ended = true;
        for (const wake of this.#waiting.splice(0)) wake(undefined);
        resolve();
      };
      socket.once('end', end);
      socket.once('close', end);
    });
  }

  static async open(t: Test, url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    socket.setNoDelay(true);
    await once(socket, 'connect');
    t.teardown(() => void socket.destroy());
    return new RawConnection(socket);
  }

  /** Writes `bytes` and resolves once the kernel has them. */
  async write(bytes: string | Buffer): Promise<void> {
    await new Promise<void>((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** The next response; undefined when the connection closed before one came. */
  next(): Promise<ConnectionResponse | undefined> {
    const ready = this.#responses.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Bytes received and not (yet) a whole response. */
  get leftover(): string {
    return this.#buffer.toString('latin1');
  }

  #parse(): void {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = this.#buffer.toString('latin1', 0, end).split('\r\n');
      const fields = lines.map((line): [string, string] => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
      });
      const header = (name: string) => fields.find(([n]) => n === name)?.[1];
      const length = Number(header('content-length') ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      const body = this.#buffer.toString('utf8', end + 4, end + 4 + length);
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      const response: ConnectionResponse = { status: Number(statusLine!.split(' ')[1]), fields, body, header };
      const wake = this.#waiting.shift();
      if (wake) wake(response);
      else this.#responses.push(response);
    }
  }
}
