import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { Test } from 'tap';
import { readResponseHead, type RawResponse } from './raw-http.js';

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
  readonly #responses: RawResponse[] = [];
  readonly #waiting: Array<(response: RawResponse | undefined) => void> = [];
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
  next(): Promise<RawResponse | undefined> {
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
      const head = readResponseHead(this.#buffer.toString('latin1', 0, end));
      const length = Number(head.header('content-length') ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      const body = this.#buffer.toString('utf8', end + 4, end + 4 + length);
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      const response: RawResponse = { ...head, body };
      const wake = this.#waiting.shift();
      if (wake) wake(response);
      else this.#responses.push(response);
    }
  }
}
