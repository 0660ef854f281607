import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import type { Config, DeepPartial } from '../../src/config/index.js';
import { staticResolver, type StaticFunctionEntry } from '../../src/functions/static-file.js';
import { RECORDS_BUCKET } from '../../src/queue/topology.js';
import { configFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { startCallbackSink, startFunctionServer, type Handler } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { recordReaches } from '../helpers/records.js';

/**
 * A lane whose invocations JetStream cannot deliver now (a retry waiting out its back-off, a
 * concurrency key at its limit) must not keep a worker's slots in a pull request: the other
 * lanes' invocations run in those slots at once. A pull request lasts 10 s (src/worker/queue.ts),
 * so each waits far less than that here, as a pull held on the blocked lane would make it wait.
 */

/** Well inside the 10 s a pull request lasts; the lane discovery sees a new subject within 0.1 s. */
const WELL_INSIDE_A_PULL_MS = 5_000;
const MINUTE = 60_000;

async function stack(t: Test, handler: Handler, functions: Record<string, Omit<StaticFunctionEntry, 'url'>>, overrides: DeepPartial<Config>) {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, handler);
  const sink = await startCallbackSink(t);
  const resolver = staticResolver(Object.fromEntries(Object.entries(functions).map(([name, entry]) => [name, { ...entry, url: `${fn.url}/${name}` }])), 'openfaas-fn');
  const config = configFor(nats.url, overrides);
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  return { nats, fn, sink, gateway };
}

t.test("a function at its limit, its invocation waiting out a retry's back-off, holds no slot: another function runs in it", async (t) => {
  const { nats, fn, sink, gateway } = await stack(
    t,
    (req, res) => void res.writeHead(req.url.startsWith('/a') ? 500 : 200).end(),
    { a: { annotations: { 'com.openfaas.max_inflight': '1' } }, b: {} },
    { worker: { maxInflight: 1 }, retry: { maxAttempts: 3, initialWaitMs: 10 * MINUTE, maxWaitMs: 10 * MINUTE, mode: 'exponential' } },
  );
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await new Kvm(nc).open(RECORDS_BUCKET);
  // The second waits behind the first's retry: the lane's consumer is at its max_ack_pending.
  const [failing] = await enqueueMany(gateway.url, 'a', 2, sink.url);
  await recordReaches(kv, failing!, 'retrying');
  for (let round = 1; round <= 3; round++) {
    const [id] = await enqueueMany(gateway.url, 'b', 1, sink.url);
    await sink.waitForCallId(id!, WELL_INSIDE_A_PULL_MS);
  }
  t.equal(fn.requests.filter((r) => r.url.startsWith('/a')).length, 1, "a's retry still waits; its second invocation has not run");
  t.equal(fn.requests.filter((r) => r.url.startsWith('/b')).length, 3, 'b ran each of its three at once');
});

t.test('a concurrency key at its limit holds no slot: another key of the function runs in the free one', async (t) => {
  const held: Handler = (_req, res) => new Promise<void>((resolve) => res.once('close', resolve));
  const { fn, sink, gateway } = await stack(
    t,
    (req, res, raw) => (req.headers['x-concurrency-key'] === 'tenant-a' ? held(req, res, raw) : void res.writeHead(200).end()),
    { f: { annotations: { 'com.asyncfn.key_max_inflight': '1' } } },
    { worker: { maxInflight: 2 } },
  );
  const enqueue = async (key: string, count: number): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const res = await fetch(`${gateway.url}/async-function/f`, { method: 'POST', body: key, headers: { 'x-callback-url': sink.url, 'x-concurrency-key': key } });
      await res.arrayBuffer();
      t.equal(res.status, 202);
      ids.push(res.headers.get('x-call-id')!);
    }
    return ids;
  };
  await enqueue('tenant-a', 3);
  await fn.waitForConcurrent(1);
  for (let round = 1; round <= 3; round++) {
    const [id] = await enqueue('tenant-b', 1);
    await sink.waitForCallId(id!, WELL_INSIDE_A_PULL_MS);
  }
  t.equal(fn.requests.filter((r) => r.headers['x-concurrency-key'] === 'tenant-a').length, 1, 'tenant-a runs one at a time');
  t.equal(fn.maxConcurrent, 2, 'tenant-b ran beside it');
});
