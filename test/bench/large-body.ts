/**
 * `node --import tsx test/bench/large-body.ts [MiB]`: one large body (default 200 MiB) through a
 * gateway and a worker, each a process of its own (compiled to `dist/` first, as deployed), to a function that hashes what it receives. Prints both processes' RSS idle and at
 * their peak (sampled every 50 ms) and whether the function got the bytes sent (SHA-256): issue
 * 17's "a 200 MiB body round-trips byte-exact with gateway and worker RSS under 150 MiB".
 * test/integration/large-payloads.test.ts checks the same round trip on every `npm test` (from
 * source, under tsx, so it bounds the RSS growth instead).
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { pollUntil } from '../helpers/eventually.js';
import { freePort, readRssBytes, spawnAsyncfn, useCompiledAsyncfn } from './processes.js';
import { FUNCTION_NAME, inScope, progress, startNats, writeFunctionsFile } from './stack.js';
import { MIB } from './stats.js';

const mib = Number(process.argv[2] ?? 200);
const SECTION = 'large-body';
useCompiledAsyncfn();

await inScope(async (scope) => {
  const nats = await startNats(scope);
  let received = 0;
  let receivedHash = '';
  let arrived: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (arrived = resolve));
  const fn = createServer((req, res) => {
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
    });
    req.on('end', () => {
      receivedHash = hash.digest('hex');
      res.end('ok');
      arrived();
    });
  });
  const fnPort = await freePort();
  await new Promise<void>((resolve) => fn.listen(fnPort, '127.0.0.1', resolve));
  scope.defer(() => new Promise<void>((resolve) => fn.close(() => resolve())));

  const gatewayPort = await freePort();
  const env = { NATS_URL: nats.url, functions_file: await writeFunctionsFile(scope, `http://127.0.0.1:${fnPort}`) };
  const gateway = spawnAsyncfn('gateway', { ...env, gateway_port: String(gatewayPort), gateway_host: '127.0.0.1' });
  scope.defer(() => gateway.stop());
  const worker = spawnAsyncfn('worker', { ...env, worker_port: '0' });
  scope.defer(() => worker.stop());
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  await pollUntil(async () => (await fetch(`${gatewayUrl}/readyz`).catch(() => undefined))?.status === 200, 'the gateway to be ready', 30_000);
  await delay(2_000);
  const idle = { gateway: await readRssBytes(gateway.pid), worker: await readRssBytes(worker.pid) };
  const peak = { ...idle };
  const sampler = setInterval(() => {
    void Promise.all([readRssBytes(gateway.pid), readRssBytes(worker.pid)]).then(([g, w]) => {
      peak.gateway = Math.max(peak.gateway, g);
      peak.worker = Math.max(peak.worker, w);
    });
  }, 50);

  // A deterministic body generated as it is sent: this process holds 1 MiB of it, never all.
  const block = Buffer.alloc(MIB, 'asyncfn large body ');
  const sent = createHash('sha256');
  async function* body(): AsyncGenerator<Buffer> {
    for (let i = 0; i < mib; i++) {
      sent.update(block);
      yield block;
    }
  }
  progress(SECTION, `POST /async-function/${FUNCTION_NAME} with ${mib} MiB`);
  const started = performance.now();
  const res = await request(`${gatewayUrl}/async-function/${FUNCTION_NAME}`, {
    method: 'POST',
    body: Readable.from(body()),
    headers: { 'content-length': String(mib * MIB) },
  });
  const answer = await res.body.text();
  if (res.statusCode !== 202) throw new Error(`answered ${res.statusCode}: ${answer}`);
  const acceptedMs = performance.now() - started;
  await done;
  const totalMs = performance.now() - started;
  clearInterval(sampler);
  const f = (bytes: number): string => (bytes / MIB).toFixed(0);
  progress(SECTION, `202 after ${(acceptedMs / 1000).toFixed(1)} s, at the function after ${(totalMs / 1000).toFixed(1)} s`);
  progress(SECTION, `gateway RSS ${f(idle.gateway)} MiB idle, ${f(peak.gateway)} MiB peak; worker ${f(idle.worker)} MiB idle, ${f(peak.worker)} MiB peak`);
  progress(SECTION, `the function got ${received} bytes, ${receivedHash === sent.digest('hex') ? 'byte-exact (SHA-256 matches)' : 'NOT what was sent'}`);
});
