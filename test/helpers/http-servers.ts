import { once, EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { waitForEvent } from './eventually.js';

export interface RecordedRequest {
  /** performance.now() when the request arrived. */
  readonly atMs?: number;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export type Handler = (req: RecordedRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>;

/** A real HTTP function that records every request and counts how many run at once. */
export interface FunctionServer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Requests being handled right now. */
  readonly concurrent: number;
  /** Highest `concurrent` seen. */
  readonly maxConcurrent: number;
  /** Resolves once `n` requests have started (bounded by `timeoutMs`). */
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `concurrent` reaches `n`. */
  waitForConcurrent(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once no request is in progress. */
  waitForIdle(timeoutMs?: number): Promise<void>;
}

export async function startFunctionServer(t: Test, handler: Handler = echoHandler): Promise<FunctionServer> {
  const events = new EventEmitter();
  const requests: RecordedRequest[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const server = createServer(async (raw, res) => {
    const arrivedAt = performance.now();
    concurrent += 1;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    let finished = false;
    const done = (): void => {
      if (finished) return;
      finished = true;
      concurrent -= 1;
      events.emit('change');
    };
    res.once('close', done);
    const chunks: Buffer[] = [];
    for await (const chunk of raw) chunks.push(chunk as Buffer);
    const req = { atMs: arrivedAt, method: raw.method ?? '', url: raw.url ?? '', headers: raw.headers, body: Buffer.concat(chunks) };
    requests.push(req);
    events.emit('change');
    try {
      await handler(req, res, raw);
    } catch {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });
  const url = await listen(t, server);
  const waitUntil = (condition: () => boolean, what: string, timeoutMs: number) => waitForEvent(events, 'change', condition, `${what} within ${timeoutMs} ms`, timeoutMs);
  return {
    url,
    requests,
    get concurrent() {
      return concurrent;
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
    waitForRequests: (n, timeoutMs = 30_000) => waitUntil(() => requests.length >= n, `${n} requests`, timeoutMs),
    waitForConcurrent: (n, timeoutMs = 30_000) => waitUntil(() => concurrent >= n, `${n} concurrent requests`, timeoutMs),
    waitForIdle: (timeoutMs = 30_000) => waitUntil(() => concurrent === 0, 'no request in progress', timeoutMs),
  };
}

/** Answers 200 with the request's body and content type. */
export const echoHandler: Handler = (req, res) => {
  res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
  res.end(req.body);
};

/** Answers after `ms`, unless the client goes away first. */
export function slowHandler(ms: number, body = 'done'): Handler {
  return (_req, res) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(body);
        resolve();
      }, ms);
      res.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
}

/** A real HTTP receiver for callbacks. */
export interface CallbackSink {
  readonly url: string;
  readonly received: RecordedRequest[];
  /** Resolves once `n` callbacks have arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /**
   * Resolves once callbacks with `n` different keys have arrived (`keyOf`: the call id, the body…):
   * where a callback may come twice (at least once, after a kill), `n` callbacks are not `n` invocations.
   */
  waitForDistinct(n: number, keyOf: (callback: RecordedRequest) => string, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Resolves when a callback for `callId` has arrived. */
  waitForCallId(callId: string, timeoutMs?: number): Promise<RecordedRequest>;
}

/** @param status the receiver's answer, fixed or by the 1-based number of the request. */
export async function startCallbackSink(t: Test, status: number | ((n: number) => number) = 200): Promise<CallbackSink> {
  const events = new EventEmitter();
  const received: RecordedRequest[] = [];
  const server = createServer(async (raw, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of raw) chunks.push(chunk as Buffer);
    received.push({ method: raw.method ?? '', url: raw.url ?? '', headers: raw.headers, body: Buffer.concat(chunks) });
    res.writeHead(typeof status === 'number' ? status : status(received.length)).end();
    events.emit('change');
  });
  const url = await listen(t, server);
  return {
    url,
    received,
    waitFor: async (n, timeoutMs = 30_000) => {
      await waitForEvent(events, 'change', () => received.length >= n, `${n} callbacks within ${timeoutMs} ms`, timeoutMs);
      return received;
    },
    waitForDistinct: async (n, keyOf, timeoutMs = 30_000) => {
      await waitForEvent(events, 'change', () => new Set(received.map(keyOf)).size >= n, `callbacks of ${n} different keys within ${timeoutMs} ms`, timeoutMs);
      return received;
    },
    waitForCallId: async (callId, timeoutMs = 30_000) => {
      const find = () => received.find((r) => r.headers['x-call-id'] === callId);
      await waitForEvent(events, 'change', () => find() !== undefined, `callback for ${callId} within ${timeoutMs} ms`, timeoutMs);
      return find()!;
    },
  };
}

/** Listens on a free loopback port, closed (connections too) at teardown; the base URL (`https:` for an https server). */
export async function listen(t: Test, server: ReturnType<typeof createServer> | HttpsServer): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `${server instanceof HttpsServer ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Answers each request by its 1-based number: `script(n)` gives the status (and optional headers). */
export function scriptedHandler(script: (n: number) => { status: number; headers?: Record<string, string>; body?: string }): Handler {
  let n = 0;
  return (_req, res) => {
    n += 1;
    const { status, headers, body } = script(n);
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(body ?? `answer ${n}`);
  };
}
