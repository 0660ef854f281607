import { connect as netConnect } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { ServerResponse } from 'node:http';
import t from 'tap';
import { spawnAsyncfn, startProcessStack, startStack } from '../helpers/asyncfn.js';
import { pollUntil } from '../helpers/eventually.js';
import type { RecordedRequest } from '../helpers/http-servers.js';
import { CALLBACK_STREAM, BATCHES_BUCKET } from '../../src/queue/topology.js';
import type { BatchRecord } from '../../src/status/batches.js';

function failEveryTwentieth(req: RecordedRequest, res: ServerResponse): void {
  const { n } = JSON.parse(req.body.toString()) as { n: number };
  setTimeout(() => {
    if (!res.destroyed) res.writeHead(n % 20 === 0 ? 400 : 200, { 'content-type': 'text/plain' }).end(`item ${n}`);
  }, 5);
}

function ndjson(from: number, to: number): string {
  let text = '';
  for (let i = from; i < to; i++) text += `${JSON.stringify({ body: { n: i } })}\n`;
  return text;
}

async function withJsm<T>(natsUrl: string, use: (jsm: Awaited<ReturnType<typeof jetstreamManager>>, nc: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: natsUrl });
  try {
    return await use(await jetstreamManager(nc), nc);
  } finally {
    await nc.close();
  }
}

t.test('kill -9 of a worker mid-batch loses nothing: the batch callback arrives once with the right counts', async (t) => {
  const { nats, fn, sink, gateway, workerEnv } = await startProcessStack(t, failEveryTwentieth);
  const env = { ...workerEnv, max_inflight: '50', ack_wait: '2s', max_retry_attempts: '1' };
  const first = await spawnAsyncfn(t, 'worker', env);
  const response = await fetch(`${gateway.url}/async-batch/work`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'x-callback-url': `${sink.url}/batch` },
    body: ndjson(0, 2_000),
  });
  t.equal(response.status, 202);
  const { batchId } = (await response.json()) as { batchId: string };
  await fn.waitForRequests(600, 60_000);
  await first.kill9();
  t.equal(sink.received.length, 0, 'killed before the batch was done');

  await spawnAsyncfn(t, 'worker', env);
  const [callback] = await sink.waitFor(1, 120_000);
  t.same(JSON.parse(callback!.body.toString()), {
    batchId,
    function: 'work',
    namespace: 'openfaas-fn',
    total: 2_000,
    succeeded: 1_900,
    failed: 100,
    deadLettered: 0,
    cancelled: 0,
  });
  // Nothing is left to send: the callback stream is empty and settled, and still one callback came.
  await pollUntil(() => withJsm(nats.url, async (jsm) => (await jsm.streams.info(CALLBACK_STREAM)).state.messages === 0), 'the callback stream to be empty', 30_000);
  const status = (await (await fetch(`${gateway.url}/async-batch/${batchId}`)).json()) as { state: string; counts: Record<string, number> };
  t.equal(status.state, 'done');
  t.same(status.counts, { pending: 0, succeeded: 1_900, failed: 100, deadLettered: 0, cancelled: 0 });
  t.equal(sink.received.length, 1, 'exactly one batch callback');
  t.comment(`function calls: ${fn.requests.length} for 2,000 items (those cut off by the kill ran again)`);
});

t.test('a batch request cut off mid-stream keeps exactly the items stored, and its record says so', async (t) => {
  const { gateway, nats } = await startStack(t, { worker: false });
  const { port } = new URL(gateway.url);
  const socket = netConnect(Number(port), '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(`POST /async-batch/work HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: 10000000\r\n\r\n`);
  // 100 whole lines, then half of the 101st.
  socket.write(ndjson(0, 100));
  socket.write('{"body": {"n": 10');
  await pollUntil(() => withJsm(nats.url, async (jsm) => (await jsm.streams.info('faas-request')).state.messages === 100), '100 stored items', 20_000);
  socket.destroy();

  const record = await (async () => {
    let found: BatchRecord | undefined;
    await pollUntil(
      () =>
        withJsm(nats.url, async (_jsm, nc) => {
          const kv = await new Kvm(nc).open(BATCHES_BUCKET);
          for await (const key of await kv.keys()) {
            const entry = await kv.get(key);
            found = entry?.json<BatchRecord>();
          }
          return found?.state === 'accepted';
        }),
      'the batch record to be final',
      20_000,
    );
    return found!;
  })();
  t.equal(record.accepted, 100, 'the record keeps exactly the items stored');
  t.equal(record.stopped?.code, 'CLIENT_DISCONNECTED');
  t.equal(await withJsm(nats.url, async (jsm) => (await jsm.streams.info('faas-request')).state.messages), 100, 'the half line was not stored');
  const status = (await (await fetch(`${gateway.url}/async-batch/${record.batchId}`)).json()) as { accepted: number; counts: { pending: number } };
  t.equal(status.accepted, 100);
  t.equal(status.counts.pending, 100);
});
