import type { Invocation } from '../../src/queue/envelope.js';

/**
 * What the pieces (./pieces.ts, ./instruction-pieces.ts) work on. Fixed ids and times, so that a
 * piece run under callgrind counts the same instructions each time.
 */

/**
 * An invocation as the gateway enqueues it:
 * a 1 KiB body, four caller headers, a callback and a trace.
 */
export const SAMPLE_INVOCATION: Invocation = {
  callId: '6f1c2f7e-5b8a-4d61-9a3e-1f2b3c4d5e6f',
  functionName: 'bench',
  namespace: 'openfaas-fn',
  method: 'POST',
  path: '/orders',
  query: 'priority=high',
  headers: [
    ['content-type', 'application/json'],
    ['x-request-id', '0b6f8e2c-3a57-4d2e-9c1a-7f3e1d2b4a5c'],
    ['user-agent', 'bench/1.0'],
    ['accept', 'application/json'],
  ],
  body: new Uint8Array(1024).fill(120),
  callbackUrl: 'http://127.0.0.1:9/callback',
  enqueuedAtMs: 1_765_000_000_000,
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
};

/** The two answers a drain reads per invocation, as node:http writes them: the function's 200 with a 2-byte body, the callback sink's 202. */
export const SAMPLE_ANSWERS: readonly Buffer[] = [
  'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nDate: Mon, 07 Dec 2026 03:04:27 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nok',
  `HTTP/1.1 202 Accepted\r\nx-call-id: ${SAMPLE_INVOCATION.callId}\r\ncontent-length: 0\r\nDate: Mon, 07 Dec 2026 03:04:27 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n`,
].map((text) => Buffer.from(text));
