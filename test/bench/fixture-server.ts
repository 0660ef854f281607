/**
 * A bench fixture run as its own process (forked by processes.ts), so the worker under test and
 * the servers it calls do not share an event loop. Role "function": a trivial function answering
 * 200 "ok", which can hold requests until released. Role "sink": a callback receiver answering 200.
 * Role "accept": the ingest's HTTP floor, answering each request 202 with an X-Call-Id and doing
 * nothing else (what a gateway costs before it does any work of its own).
 * The parent drives it over the IPC channel: requests `{ id, cmd, ... }` get `{ id, ...result }`;
 * with tracing on, each request is also reported as `{ event, callId, atMs }`.
 */
import { once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { epochMs } from './stats.js';

export type FixtureRole = 'function' | 'sink' | 'accept';

export type FixtureCommand = { cmd: 'stats' } | { cmd: 'reset' } | { cmd: 'trace'; on: boolean } | { cmd: 'hold'; on: boolean } | { cmd: 'release' };

/** What `stats` answers. Times are epoch ms; 0 before the first request. */
export interface FixtureStats {
  readonly count: number;
  readonly held: number;
  readonly maxConcurrent: number;
  readonly firstAtMs: number;
  readonly lastAtMs: number;
}

export type FixtureEvent = { event: 'listening'; url: string } | { event: 'request'; callId: string; atMs: number };

/** Held responses are answered this many at a time, one batch per tick, to bound the burst of callbacks. */
const RELEASE_BATCH = 500;

const role = process.argv[2] as FixtureRole;
let count = 0;
let concurrent = 0;
let maxConcurrent = 0;
let firstAtMs = 0;
let lastAtMs = 0;
let trace = false;
let holding = false;
const held: ServerResponse[] = [];

/** The accept role's X-Call-Id: a UUID's length, as the gateway answers. */
const CALL_ID = '00000000-0000-4000-8000-000000000000';

function answer(res: ServerResponse, close = false): void {
  if (role === 'accept') {
    res.writeHead(202, { 'x-call-id': CALL_ID, 'content-length': '0' });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2', ...(close ? { connection: 'close' } : {}) });
  res.end('ok');
}

const server = createServer((req, res) => {
  const atMs = epochMs();
  concurrent += 1;
  maxConcurrent = Math.max(maxConcurrent, concurrent);
  res.once('close', () => (concurrent -= 1));
  req.resume();
  req.once('end', () => {
    count += 1;
    if (firstAtMs === 0) firstAtMs = atMs;
    lastAtMs = atMs;
    if (trace) process.send!({ event: 'request', callId: String(req.headers['x-call-id']), atMs } satisfies FixtureEvent);
    // A held request's socket is closed after its answer: 10,000 idle keep-alive sockets to the
    // function plus 10,000 new ones to the sink would exceed the worker's file descriptor limit.
    if (role === 'function' && holding) held.push(res);
    else answer(res);
  });
});
server.keepAliveTimeout = 60_000;
server.requestTimeout = 0;

function release(): void {
  const batch = held.splice(0, RELEASE_BATCH);
  for (const res of batch) answer(res, true);
  if (held.length > 0) setImmediate(release);
}

function handle(message: FixtureCommand): object {
  switch (message.cmd) {
    case 'stats':
      return { count, held: held.length, maxConcurrent, firstAtMs, lastAtMs } satisfies FixtureStats;
    case 'reset':
      count = 0;
      maxConcurrent = concurrent;
      firstAtMs = 0;
      lastAtMs = 0;
      return {};
    case 'trace':
      trace = message.on;
      return {};
    case 'hold':
      holding = message.on;
      return {};
    case 'release':
      holding = false;
      release();
      return {};
  }
}

process.on('message', (message: FixtureCommand & { id: number }) => {
  process.send!({ id: message.id, ...handle(message) });
});
// The parent going away ends the fixture: nothing is left behind.
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1');
await once(server, 'listening');
process.send!({ event: 'listening', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } satisfies FixtureEvent);
