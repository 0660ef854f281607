import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Readable } from 'node:stream';
import { Kvm } from '@nats-io/kv';
import t from 'tap';
import { request } from 'undici';
import { BATCHES_BUCKET } from '../../src/queue/topology.js';
import { deferred } from '../helpers/deferred.js';
import { eventually } from '../helpers/eventually.js';
import { runBatchCommand } from '../../src/cli/batch.js';
import { startStack } from '../helpers/asyncfn.js';
import type { RecordedRequest } from '../helpers/http-servers.js';
import type { ServerResponse } from 'node:http';

/** Items whose number is a multiple of 20 fail permanently (400, not retried): 5 %. */
function failEveryTwentieth(req: RecordedRequest, res: ServerResponse): void {
  const { n } = JSON.parse(req.body.toString()) as { n: number };
  res.writeHead(n % 20 === 0 ? 400 : 200, { 'content-type': 'text/plain' }).end(`item ${n}`);
}

function ndjson(count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += `${JSON.stringify({ body: { n: i } })}\n`;
  return text;
}

interface BatchStatusBody {
  batchId: string;
  state: string;
  accepted: number;
  done: boolean;
  progress: number;
  counts: { pending: number; succeeded: number; failed: number; deadLettered: number; cancelled: number };
  failed: Array<{ callId: string; state: string; status?: number }>;
  nextCursor?: string;
}

t.test('a 10,000-item NDJSON batch is accepted in one request; one batch callback with the right counts; status lists the failures', async (t) => {
  const { gateway, sink, fn } = await startStack(t, { handler: failEveryTwentieth, config: { worker: { maxInflight: 200 } } });
  const response = await fetch(`${gateway.url}/async-batch/work`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'x-callback-url': `${sink.url}/batch` },
    body: ndjson(10_000),
  });
  t.equal(response.status, 202);
  const accepted = (await response.json()) as { batchId: string; accepted: number; callIdPrefix: string };
  t.equal(accepted.accepted, 10_000, 'every item stored before the answer');
  t.equal(response.headers.get('x-batch-id'), accepted.batchId);

  // Per-item callbacks are not asked for: the one callback is the batch's.
  const [callback] = await sink.waitFor(1, 120_000);
  t.equal(callback!.url, '/batch');
  t.equal(callback!.headers['x-batch-id'], accepted.batchId);
  t.equal(callback!.headers['content-type'], 'application/json');
  t.same(JSON.parse(callback!.body.toString()), {
    batchId: accepted.batchId,
    function: 'work',
    namespace: 'openfaas-fn',
    total: 10_000,
    succeeded: 9_500,
    failed: 500,
    deadLettered: 0,
    cancelled: 0,
  });
  t.ok(fn.requests.length >= 10_000, 'every item ran');

  const status = (await (await fetch(`${gateway.url}/async-batch/${accepted.batchId}?limit=1000`)).json()) as BatchStatusBody;
  t.equal(status.state, 'done');
  t.equal(status.done, true);
  t.equal(status.progress, 1);
  t.same(status.counts, { pending: 0, succeeded: 9_500, failed: 500, deadLettered: 0, cancelled: 0 });
  t.equal(status.failed.length, 500, 'every failure listed');
  t.same(
    status.failed.map((f) => Number(f.callId.slice(accepted.callIdPrefix.length))).sort((a, b) => a - b),
    Array.from({ length: 500 }, (_, i) => i * 20),
    'exactly the items that failed',
  );
  t.ok(status.failed.every((f) => f.state === 'failed' && f.status === 400));
  t.equal(status.nextCursor, undefined, 'one page holds them');

  // Paging: 3 pages of 200 walk the same list.
  const paged: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 5; page++) {
    const body = (await (await fetch(`${gateway.url}/async-batch/${accepted.batchId}?limit=200${cursor ? `&cursor=${cursor}` : ''}`)).json()) as BatchStatusBody;
    paged.push(...body.failed.map((f) => f.callId));
    cursor = body.nextCursor;
    if (!cursor) break;
  }
  t.same(
    paged,
    status.failed.map((f) => f.callId),
    'pages list each failure once, in order',
  );

  const exact = (await (await fetch(`${gateway.url}/async-batch/${accepted.batchId}?limit=500`)).json()) as BatchStatusBody;
  t.equal(exact.failed.length, 500);
  t.equal(exact.nextCursor, undefined, 'a page that ends with the last failure has no next page');

  // A moment later still one callback: no second worker or status read sends another.
  await fetch(`${gateway.url}/async-batch/${accepted.batchId}`);
  t.equal(sink.received.length, 1, 'the batch callback came once');
});

t.test('a JSON array batch: per-item headers, query, path and bodies reach the function; the item record names its batch', async (t) => {
  const { gateway, fn } = await startStack(t);
  const items = [
    { body: 'plain text', headers: { 'content-type': 'text/plain', 'x-item': 'a' }, query: 'x=1', path: '/sub' },
    { body: Buffer.from([0, 1, 2, 255]).toString('base64'), bodyEncoding: 'base64' },
    { body: { json: true } },
  ];
  const response = await fetch(`${gateway.url}/async-batch/work`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(items, null, 2),
  });
  t.equal(response.status, 202);
  const { batchId, accepted } = (await response.json()) as { batchId: string; accepted: number };
  t.equal(accepted, 3);
  await fn.waitForRequests(3);
  const byUrl = new Map(fn.requests.map((r) => [r.url, r]));
  const first = byUrl.get('/sub?x=1')!;
  t.equal(first.body.toString(), 'plain text');
  t.equal(first.headers['x-item'], 'a');
  t.equal(first.headers['content-type'], 'text/plain');
  const others = fn.requests.filter((r) => r.url === '/');
  t.ok(
    others.some((r) => r.body.equals(Buffer.from([0, 1, 2, 255]))),
    'base64 body decoded to its bytes',
  );
  t.ok(others.some((r) => r.body.toString() === '{"json":true}' && r.headers['content-type'] === 'application/json'));
  const record = (await (await fetch(`${gateway.url}/async-function/${batchId}-0?wait=20s`)).json()) as { state: string; batchId?: string };
  t.equal(record.state, 'succeeded');
  t.equal(record.batchId, batchId, 'the item record names its batch');
});

t.test('a bad line stops the batch: 400 with its line and the count kept; the items before it are stored, none after', async (t) => {
  const { gateway, nats } = await startStack(t, { worker: false });
  const body = `${ndjson(5)}{"body": oops}\n${ndjson(5)}`;
  const response = await fetch(`${gateway.url}/async-batch/work`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  t.equal(response.status, 400);
  t.equal(response.headers.get('x-asyncfn-error'), 'ASYNCFN_ERR_BATCH_ITEM_INVALID');
  const answer = (await response.json()) as { batchId: string; accepted: number; error: { line: number; index: number; code: string } };
  t.equal(answer.accepted, 5);
  t.equal(answer.error.line, 6);
  t.equal(answer.error.index, 5);
  const status = (await (await fetch(`${gateway.url}/async-batch/${answer.batchId}`)).json()) as BatchStatusBody & { stopped: { line: number } };
  t.equal(status.accepted, 5);
  t.equal(status.state, 'accepted');
  t.equal(status.stopped.line, 6);
  t.equal(await storedItems(nats.url, 'faas-request'), 5, 'exactly 5 invocations in the queue');
});

t.test('limits: more than max_batch_items is 413 with the items before the limit kept; an empty batch is 400; other types 415', async (t) => {
  const { gateway, nats } = await startStack(t, { worker: false, config: { gateway: { maxBatchItems: 3 } } });
  const over = await fetch(`${gateway.url}/async-batch/work`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: ndjson(5) });
  t.equal(over.status, 413);
  t.equal(over.headers.get('x-asyncfn-error'), 'ASYNCFN_ERR_BATCH_TOO_LARGE');
  t.match(await over.json(), { accepted: 3, error: { message: /max_batch_items \(3\)/ } });
  t.equal(await storedItems(nats.url, 'faas-request'), 3);

  const empty = await fetch(`${gateway.url}/async-batch/work`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' });
  t.equal(empty.status, 400);
  t.equal(empty.headers.get('x-asyncfn-error'), 'ASYNCFN_ERR_BATCH_EMPTY');

  const text = await fetch(`${gateway.url}/async-batch/work`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
  t.equal(text.status, 415);
  const missing = await fetch(`${gateway.url}/async-batch/nope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[{}]' });
  t.equal(missing.status, 404);
  t.equal((await fetch(`${gateway.url}/async-batch/no-such-batch`)).status, 404);
});

t.test('an item whose body is at max_body_size is accepted however much its JSON escapes it; one byte more is 413', async (t) => {
  // Large enough that both texts pass the old limit, 4/3 of the body and 64 KiB.
  const maxBodyBytes = 120_000;
  const { gateway, fn } = await startStack(t, { config: { gateway: { maxBodyBytes } } });
  // Each quote is written as two characters, each U+0001 as six: texts well past 4/3 of the body.
  for (const char of ['"', '\u0001']) {
    const body = char.repeat(maxBodyBytes);
    const answer = await fetch(`${gateway.url}/async-batch/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: `${JSON.stringify({ body })}\n`,
    });
    t.equal(answer.status, 202, `a body of ${maxBodyBytes} × ${JSON.stringify(char)}`);
    t.equal(((await answer.json()) as { accepted: number }).accepted, 1);
    const over = await fetch(`${gateway.url}/async-batch/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: `${JSON.stringify({ body: `${body}${char}` })}\n`,
    });
    t.equal(over.status, 413);
    t.match(await over.json(), { accepted: 0, error: { message: new RegExp(`the body exceeds max_body_size \\(${maxBodyBytes} bytes\\)`) } });
  }
  await fn.waitForRequests(2, 30_000);
  t.same(
    fn.requests.map((r) => r.body.toString()).sort(),
    ['"'.repeat(maxBodyBytes), '\u0001'.repeat(maxBodyBytes)].sort(),
    'each function call gets the body byte for byte',
  );
});

t.test('Idempotency-Key: a repeated batch request answers the first batch and stores nothing again', async (t) => {
  const { gateway, nats } = await startStack(t, { worker: false });
  const send = () =>
    fetch(`${gateway.url}/async-batch/work`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': 'k1' }, body: ndjson(4) });
  const first = await send();
  const second = await send();
  t.equal(first.status, 202);
  t.equal(second.status, 202);
  t.equal(second.headers.get('idempotent-replayed'), 'true');
  t.equal(second.headers.get('x-batch-id'), first.headers.get('x-batch-id'));
  t.equal(((await second.json()) as { accepted: number }).accepted, 4);
  t.equal(await storedItems(nats.url, 'faas-request'), 4);
});

/** Messages in a queue's stream. */
async function storedItems(natsUrl: string, stream: string): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}

t.test('DELETE cancels the items not ended; the batch completes with them as cancelled; asyncfn batch status prints it', async (t) => {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const { gateway, sink, fn, nats } = await startStack(t, {
    handler: async (_req, res) => {
      await released;
      if (!res.destroyed) res.writeHead(200).end('ok');
    },
    config: { worker: { maxInflight: 2 } },
  });
  const submitted = await fetch(`${gateway.url}/async-batch/work`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'x-callback-url': `${sink.url}/batch` },
    body: ndjson(20),
  });
  const { batchId } = (await submitted.json()) as { batchId: string };
  await fn.waitForConcurrent(2);
  const cancel = await fetch(`${gateway.url}/async-batch/${batchId}`, { method: 'DELETE' });
  t.equal(cancel.status, 202);
  t.same(await cancel.json(), { batchId, cancelled: 20 }, 'none had ended');
  release();
  const status = (await (await fetch(`${gateway.url}/async-batch/${batchId}?wait=30s`)).json()) as BatchStatusBody;
  t.equal(status.done, true);
  t.equal(status.counts.cancelled + status.counts.succeeded, 20);
  t.ok(status.counts.cancelled >= 18, `the queued ones were cancelled (${status.counts.cancelled})`);
  const [callback] = await sink.waitFor(1);
  t.equal((JSON.parse(callback!.body.toString()) as { cancelled: number }).cancelled, status.counts.cancelled);
  t.ok(fn.requests.length <= 4, 'the cancelled items did not run');

  const out: string[] = [];
  const err: string[] = [];
  const code = await runBatchCommand(['status', batchId, '--wait=5s'], { natsUrl: nats.url, out: (l) => out.push(l), err: (l) => err.push(l) });
  t.equal(code, 0, err.join('\n'));
  t.match(out.join('\n'), /state\s+done/);
  t.match(out.join('\n'), /\[#{30}\] 100\.0%/);
  t.match(out.join('\n'), new RegExp(`20/20 ended: ${status.counts.succeeded} succeeded, 0 failed, 0 dead-lettered, ${status.counts.cancelled} cancelled, 0 pending`));
  t.equal(await runBatchCommand(['status', 'nope'], { natsUrl: nats.url, out: () => undefined, err: () => undefined }), 1);
});

t.test('Idempotency-Key: a batch refused with nothing stored gives its key back; the corrected resend is a new batch', async (t) => {
  const { gateway, nats } = await startStack(t, { worker: false });
  const send = (body: string) =>
    fetch(`${gateway.url}/async-batch/work`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': 'k-fixed' }, body });
  const refused = await send('{"bdy":1}\n');
  t.equal(refused.status, 400, 'the first item is invalid');
  const empty = await send('');
  t.equal(empty.status, 400, 'an empty batch, with the same key');
  const fixed = await send(ndjson(2));
  t.equal(fixed.status, 202);
  t.equal(fixed.headers.get('idempotent-replayed'), null, 'not a replay of a refusal');
  t.equal(((await fixed.json()) as { accepted: number }).accepted, 2);
  t.equal(await storedItems(nats.url, 'faas-request'), 2, 'its items are stored');
  const again = await send(ndjson(2));
  t.equal(again.headers.get('idempotent-replayed'), 'true', 'the batch that stored items keeps its key');
  t.equal(await storedItems(nats.url, 'faas-request'), 2);
});

t.test('DELETE while the batch is still being uploaded is 409, not a cancel of none', async (t) => {
  const { gateway, nats } = await startStack(t, { worker: false });
  const more = deferred<void>();
  async function* slowBody() {
    yield new TextEncoder().encode(ndjson(1));
    await more.promise;
    yield new TextEncoder().encode(ndjson(1));
  }
  const submitted = request(`${gateway.url}/async-batch/work`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: Readable.from(slowBody()) });
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const batches = await new Kvm(nc).open(BATCHES_BUCKET);
  let batchId: string | undefined;
  await eventually(async () => {
    for await (const key of await batches.keys()) batchId = key;
    return batchId !== undefined;
  }, 'the batch record, written before its items');
  const cancel = await fetch(`${gateway.url}/async-batch/${batchId!}`, { method: 'DELETE' });
  t.equal(cancel.status, 409);
  t.equal(cancel.headers.get('x-asyncfn-error'), 'ASYNCFN_ERR_BATCH_UPLOADING');
  t.equal(cancel.headers.get('retry-after'), '1');
  more.resolve();
  const done = await submitted;
  t.equal(done.statusCode, 202);
  t.equal(((await done.body.json()) as { accepted: number }).accepted, 2);
  const after = await fetch(`${gateway.url}/async-batch/${batchId!}`, { method: 'DELETE' });
  t.equal(after.status, 202, 'once accepted, it is cancelled');
  t.same(await after.json(), { batchId, cancelled: 2 });
});
