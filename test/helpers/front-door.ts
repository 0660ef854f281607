import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import type { FastEnqueue, RequestHead } from '../../src/gateway/fast-enqueue.js';
import { installFrontDoor } from '../../src/gateway/front-door.js';
import type { ResponseWriter } from '../../src/gateway/http-errors.js';
import { RawConnection } from './raw-connection.js';

/**
 * The front door (src/gateway/front-door.ts) on a real node:http server, for its tests: the async
 * requests it takes go to a stand-in for the gateway's enqueue, which answers 202 with what it
 * read (`x-body`, `x-url`), at once or when the test releases it; every other request goes to
 * node's own listener, which answers 200 with `node <method> <url> <body>`.
 */

export interface Taken {
  readonly head: RequestHead;
  readonly body: string;
  release(): void;
}

export class StandIn {
  hold = false;
  /** Largest Content-Length taken. */
  maxBody = 1_000;
  readonly taken: Taken[] = [];
  readonly #waiting: Array<{ readonly count: number; readonly resolve: (taken: Taken) => void }> = [];

  readonly enqueue: FastEnqueue = Object.assign(() => false, {
    accepts: (head: RequestHead) => Number(head.headers['content-length']) <= this.maxBody,
    answer: async (head: RequestHead, body: Uint8Array, res: ResponseWriter) => {
      const text = Buffer.from(body).toString();
      const release = () => {
        res.writeHead(202, ['x-body', text, 'x-url', head.url!, 'content-length', '0']);
        res.end();
      };
      const taken = { head, body: text, release };
      this.taken.push(taken);
      for (let i = this.#waiting.length - 1; i >= 0; i--) {
        if (this.#waiting[i]!.count === this.taken.length) this.#waiting.splice(i, 1)[0]!.resolve(taken);
      }
      if (!this.hold) release();
    },
  });

  /** The `count`th request taken (already taken, or when it is). */
  next(count = 1): Promise<Taken> {
    if (this.taken.length >= count) return Promise.resolve(this.taken[count - 1]!);
    return new Promise((resolve) => this.#waiting.push({ count, resolve }));
  }
}

export async function startFrontDoor(t: Test, setup: (server: Server) => void = () => undefined) {
  const standIn = new StandIn();
  const server = createServer({ maxHeaderSize: 16_384 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = `node ${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`;
      res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  setup(server);
  const door = installFrontDoor(server, { enqueue: () => standIn.enqueue, maxHeaderBytes: 16_384 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, standIn, door, url, open: () => RawConnection.open(t, url) };
}

/** A request the front door takes: `POST <path>` with a Content-Length body. */
export function post(path: string, body: string, extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nHost: gw\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * Client and server share the test's event loop, and on loopback a write is in the peer's buffer
 * at once: lets the loop poll, so the server has read what was written (data, a FIN) before the
 * test goes on.
 */
export async function letServerRead(): Promise<void> {
  await new Promise(setImmediate);
  await new Promise(setImmediate);
}
