/**
 * One HTTP server hosting the sample functions, for `asyncfn up`, the README and tests.
 * It routes by the first path segment (`/echo/a/b?x=1` → echo with suffix "/a/b"), which is how a
 * function sees a request that came through an OpenFaaS-style `/function/<name>/<path>` route.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callerGone } from '../http/caller-gone.js';
import { createChaos } from './functions/chaos.js';
import { echo } from './functions/echo.js';
import { figlet } from './functions/figlet.js';
import { sleep } from './functions/sleep.js';
import { textResponse, type SampleFunction, type SampleResponse } from './sample-function.js';

/** Options of {@link startSampleFunctions}. */
export interface SampleFunctionsOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port; 0 (the default) picks a free one. */
  port?: number;
  /** The functions to host; default echo, sleep, chaos and figlet (tests pass their own). */
  samples?: readonly SampleFunction[];
}

/** A running sample-functions server. */
export interface SampleFunctions {
  /** Base URL of the server, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Each function's base URL (`${url}/${name}`), keyed by name; ready for `staticResolver`. */
  functions: Record<string, { url: string }>;
  /** Stops listening and drops open connections (including sleeping requests). */
  close(): Promise<void>;
}

/** A fresh set per server: chaos keeps the canned response its `/set` chose. */
function createSamples(): readonly SampleFunction[] {
  return [echo, sleep, createChaos(), figlet];
}

/** Reads the whole body; undefined when it exceeds `maxBytes`. The rest is drained, not kept,
 * so the client can finish sending and read the 413 instead of seeing a reset connection. */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
  }
  return size > maxBytes ? undefined : Buffer.concat(chunks, size);
}

function send(res: ServerResponse, out: SampleResponse): void {
  const body = out.body ?? '';
  res.writeHead(out.status, { ...out.headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function route(byName: ReadonlyMap<string, SampleFunction>, req: IncomingMessage, res: ServerResponse) {
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const pathname = q === -1 ? target : target.slice(0, q);
  const slash = pathname.indexOf('/', 1);
  const name = slash === -1 ? pathname.slice(1) : pathname.slice(1, slash);
  const fn = byName.get(name);
  if (!fn) {
    req.resume();
    return send(res, textResponse(404, 'function not found\n'));
  }

  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const body = await readBody(req, fn.maxBodyBytes);
  if (body === undefined) {
    res.setHeader('connection', 'close');
    return send(res, textResponse(413, `request body larger than ${fn.maxBodyBytes} bytes\n`));
  }
  const out = await fn.handle({
    method: req.method ?? 'GET',
    pathSuffix: slash === -1 ? '' : pathname.slice(slash),
    query: q === -1 ? '' : target.slice(q + 1),
    headers: req.headers,
    body,
    signal: abort.signal,
  });
  send(res, out);
}

/** Starts the sample functions (echo, sleep, chaos, figlet) on one server. */
export async function startSampleFunctions(opts: SampleFunctionsOptions = {}): Promise<SampleFunctions> {
  const host = opts.host ?? '127.0.0.1';
  const samples = opts.samples ?? createSamples();
  const byName = new Map(samples.map((f) => [f.name, f]));
  const server = createServer((req, res) => {
    route(byName, req, res).catch((err: unknown) => {
      // A client that left (abort, reset) needs no answer.
      if (res.destroyed || callerGone(req)) return;
      if (res.headersSent) return void res.destroy();
      send(res, textResponse(500, `internal error: ${(err as Error).message}\n`));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    functions: Object.fromEntries(samples.map((f) => [f.name, { url: `${url}/${f.name}` }])),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive and sleeping connections would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}
