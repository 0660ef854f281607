import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { Client, request } from 'undici';
import { spawnAsyncfn, writeFunctionsFile } from '../helpers/asyncfn.js';
import { startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

/** Issue 13: `gateway_processes` runs N gateway processes on one port (node:cluster). */

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function submitMany(url: string, count: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const res = await request(`${url}/async-function/work`, { method: 'POST', body: `n${i}`, headersTimeout: 30_000, bodyTimeout: 30_000 });
      await res.body.dump();
      return res.statusCode;
    }),
  );
}

/** Starts a gateway with gateway_processes=2 and waits until both processes log that they listen. */
async function startTwo(t: Test) {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const gateway = await spawnAsyncfn(t, 'gateway', {
    NATS_URL: nats.url,
    functions_file: await writeFunctionsFile(t, { work: fn.url }),
    gateway_host: '127.0.0.1',
    gateway_processes: '2',
  });
  const started = await gateway.waitForLog((l) => l.msg === 'gateway processes listening', 'gateway processes listening');
  const pids = started.pids as number[];
  // Each process logs on its own stdout, so its line may come after the primary's.
  const listening = await Promise.all(pids.map((pid) => gateway.waitForLog((l) => l.msg === 'gateway listening' && l.pid === pid, `gateway listening (pid ${pid})`)));
  return { gateway, pids, listening };
}

t.test('gateway_processes=2: two processes share the port, a dead one is replaced, SIGTERM stops them all', async (t) => {
  const { gateway, pids, listening } = await startTwo(t);
  t.equal(pids.length, 2, 'two gateway processes');
  t.equal(new Set(listening.map((l) => l.url)).size, 1, `on one port: ${String(listening[0]?.url)}`);
  const url = String(listening[0]!.url);

  t.same(new Set(await submitMany(url, 200)), new Set([202]), '200 submits, all 202');
  const status = await request(`${url}/async-function/no-such-call`);
  t.equal(status.statusCode, 404);
  await status.body.dump();

  process.kill(pids[0]!, 'SIGKILL');
  const { replacement: pid } = await gateway.waitForLog((l) => l.msg === 'a gateway process exited; starting another', 'the replacement');
  const replacement = await gateway.waitForLog((l) => l.msg === 'gateway listening' && l.pid === pid, 'the replacement listening');
  t.equal(replacement.url, url, 'the replacement listens on the same port');
  t.same(new Set(await submitMany(url, 50)), new Set([202]), 'accepted after one process died');

  const all = gateway.logs.filter((l) => l.msg === 'gateway listening').map((l) => l.pid as number);
  t.equal(await gateway.terminate(), 0, 'SIGTERM: the primary exits 0 after its processes drained');
  t.same(all.filter(alive), [], 'no gateway process is left');
});

t.test('SIGTERM while a replacement is still starting: the primary stops it too and exits 0', async (t) => {
  const { gateway, pids } = await startTwo(t);
  process.kill(pids[0]!, 'SIGKILL');
  const exited = await gateway.waitForLog((l) => l.msg === 'a gateway process exited; starting another', 'the replacement');
  const replacement = exited.replacement as number;
  t.ok(alive(replacement), `the replacement (pid ${replacement}) is starting`);
  // It needs far longer than this turn to load and listen.
  t.equal(await gateway.terminate(), 0, 'exits 0: a replacement stopped before it listened is not a crash');
  t.notOk(
    gateway.logs.some((l) => l.msg === 'gateway listening' && l.pid === replacement),
    'the replacement never listened',
  );
  t.same([...pids, replacement].filter(alive), [], 'no gateway process is left');
});

t.test('gateway_processes=2 whose processes cannot start: the gateway exits 1, as with one process', async (t) => {
  const nats = await startNatsServer(t);
  // Each gateway process fails to listen: another server holds the port.
  const holder = createServer();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.teardown(() => holder.close());
  const port = String((holder.address() as AddressInfo).port);
  const functionsFile = await writeFunctionsFile(t, { work: 'http://127.0.0.1:9' });
  const spawned = spawnAsyncfn(t, 'gateway', {
    NATS_URL: nats.url,
    functions_file: functionsFile,
    gateway_host: '127.0.0.1',
    gateway_port: port,
    gateway_processes: '2',
  });
  await t.rejects(spawned, /exited \(1\)[\s\S]*exited before listening/);
});

t.test('gateway_processes=2 with a functions file that cannot be read: refused before any process starts', async (t) => {
  const nats = await startNatsServer(t);
  // The primary reads the settings and the functions file (src/cli/settings-apart.ts) before it forks.
  const spawned = spawnAsyncfn(t, 'gateway', { NATS_URL: nats.url, functions_file: '/nonexistent/functions.yaml', gateway_host: '127.0.0.1', gateway_processes: '2' });
  const err = await spawned.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  t.match(err?.message, /exited \(1\)[\s\S]*cannot read functions file \/nonexistent\/functions\.yaml/);
  t.notMatch(err?.message, /exited before listening|gateway process/, 'no gateway process was started');
});

t.test('gateway_processes=2: every scrape of /metrics, whichever process answers it, counts the requests of both', async (t) => {
  const { gateway, listening } = await startTwo(t);
  const url = String(listening[0]!.url);
  // One keep-alive connection: one process answers every request on it.
  const client = new Client(url);
  t.teardown(() => client.close());
  const statuses = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const res = await client.request({ method: 'POST', path: '/async-function/work', body: `n${i}` });
    await res.body.dump();
    statuses.add(res.statusCode);
  }
  t.same([...statuses], [202], '100 submits on one connection, all 202');
  // A connection each: the primary hands them to the processes in turn (round robin).
  const counts: string[] = [];
  const observed: string[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await request(`${url}/metrics`, { reset: true });
    const text = await res.body.text();
    counts.push(/^gateway_function_invocation_total\{[^}]*function_name="work"[^}]*code="202"[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 'absent');
    observed.push(/^gateway_functions_seconds_count\{[^}]*function_name="work"[^}]*code="202"[^}]*\} (\d+)$/m.exec(text)?.[1] ?? 'absent');
  }
  t.same(counts, Array(6).fill('100'), `the 100 requests in every scrape: ${counts.join(' ')}`);
  t.same(observed, Array(6).fill('100'), `and their durations (a histogram): ${observed.join(' ')}`);
  t.equal(await gateway.terminate(), 0);
});
