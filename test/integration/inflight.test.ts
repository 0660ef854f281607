import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { configFor, resolverFor, spawnAsyncfn, startProcessStack, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { eventually } from '../helpers/eventually.js';
import { startCallbackSink, startFunctionServer, type Handler } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import type { InFlightView } from '../../src/gateway/inflight.js';

/** Issue 18 (first piece): `GET /system/inflight` gathers every worker's in-flight invocations over NATS request/reply. */

/** A function that answers only when the test says so; every held request is released at teardown. */
function heldFunction(t: Test) {
  const release = deferred<void>();
  t.teardown(() => release.resolve());
  const handler: Handler = async (_req, res) => {
    await release.promise;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('done');
  };
  return { handler, release: () => release.resolve() };
}

async function submit(t: Test, gatewayUrl: string, callId: string, callbackUrl: string): Promise<void> {
  const res = await request(`${gatewayUrl}/async-function/work`, { method: 'POST', body: 'x', headers: { 'x-call-id': callId, 'x-callback-url': callbackUrl } });
  t.equal(res.statusCode, 202, await res.body.text());
}

interface Answer {
  readonly status: number;
  readonly body: string;
  /** Its X-Asyncfn-Error. */
  readonly code: unknown;
  view(): InFlightView;
}

async function inFlight(gatewayUrl: string, query = '', headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`${gatewayUrl}/system/inflight${query}`, { headers });
  const body = await res.body.text();
  return { status: res.statusCode, body, code: res.headers['x-asyncfn-error'], view: () => JSON.parse(body) as InFlightView };
}

t.test('a held invocation is listed invoking, attempt 1, with its function; filter and limit; gone once it answered', async (t) => {
  const fn = heldFunction(t);
  const stack = await startStack(t, { handler: fn.handler });
  const callId = `inflight-${Math.random().toString(36).slice(2)}`;
  await submit(t, stack.gateway.url, callId, stack.sink.url);
  await stack.fn.waitForRequests(1);

  const res = await inFlight(stack.gateway.url);
  t.equal(res.status, 200, res.body);
  const view = res.view();
  t.equal(view.total, 1);
  t.equal(view.workers.length, 1, 'the one worker answered');
  const [worker] = view.workers;
  t.equal(worker!.worker, `${hostname()}:${process.pid}`, 'the worker names itself host:pid');
  t.same(worker!.byState, { invoking: 1 });
  t.equal(worker!.truncated, false);
  t.same(
    worker!.queues.map((q) => [q.queue, q.inFlight]),
    [['faas-request', 1]],
  );
  t.match(worker!.invocations, [{ callId, function: 'work', namespace: stack.config.functions.defaultNamespace, queue: 'faas-request', state: 'invoking', attempt: 1 }]);
  t.ok(worker!.invocations[0]!.startedAtMs <= view.at && worker!.invocations[0]!.elapsedMs >= 0, 'delivery time and elapsed time');

  const other = (await inFlight(stack.gateway.url, '?function=other')).view();
  t.same([other.total, other.workers[0]?.invocations], [0, []], 'filtered by another function: none listed');
  t.equal(other.workers[0]?.queues[0]?.inFlight, 1, 'the queue still counts it');
  const limited = (await inFlight(stack.gateway.url, '?function=work&limit=1')).view();
  t.equal(limited.workers[0]?.invocations[0]?.callId, callId);
  const bad = await inFlight(stack.gateway.url, '?limit=0');
  t.equal(bad.status, 400);
  t.match(bad.body, /limit must be a whole number from 1 to 2000/);

  fn.release();
  await stack.sink.waitForCallId(callId);
  await eventually(async () => (await inFlight(stack.gateway.url)).view().total === 0, 'the settled invocation to leave the view');
  const after = (await inFlight(stack.gateway.url)).view();
  t.same(after.workers[0]?.invocations, [], 'nothing in flight');
});

t.test('progress=true: a held invocation carries the progress its function reported; without it, none', async (t) => {
  const reported = deferred<number>();
  const release = deferred<void>();
  t.teardown(() => release.resolve());
  const nats = await startNatsServer(t);
  // A long job: reports how far it is on the URL it was given, then works until released.
  const fn = await startFunctionServer(t, async (req, res) => {
    const answer = await request(String(req.headers['x-asyncfn-progress-url']), { method: 'POST', body: JSON.stringify({ percent: 40, message: 'step 2 of 5' }) });
    await answer.body.dump();
    reported.resolve(answer.statusCode);
    await release.promise;
    res.writeHead(200).end('done');
  });
  const sink = await startCallbackSink(t);
  const resolver = resolverFor({ work: fn.url });
  const gateway = await startTestGateway(t, configFor(nats.url), resolver);
  await startTestWorker(t, configFor(nats.url, { worker: { gatewayPublicUrl: gateway.url } }), resolver);
  const callId = `progress-${Math.random().toString(36).slice(2)}`;
  await submit(t, gateway.url, callId, sink.url);
  t.equal(await reported.promise, 204, 'the report was accepted');

  let listed: InFlightView | undefined;
  await eventually(async () => {
    listed = (await inFlight(gateway.url, '?progress=true')).view();
    return listed.workers[0]?.invocations[0]?.progress !== undefined;
  }, 'the reported progress in the in-flight view');
  t.match(listed!.workers[0]!.invocations[0], { callId, state: 'invoking', progress: { percent: 40, message: 'step 2 of 5' } });
  const plain = (await inFlight(gateway.url)).view();
  t.equal(plain.workers[0]?.invocations[0]?.callId, callId);
  t.notOk('progress' in plain.workers[0]!.invocations[0]!, 'not asked: no record is read, no progress listed');
  const bad = await inFlight(gateway.url, '?progress=yes');
  t.equal(bad.status, 400);
  t.match(bad.body, /progress must be true or false/);

  release.resolve();
  await sink.waitForCallId(callId);
});

t.test('two worker processes: both answer one request, each with the invocation it holds', async (t) => {
  const fn = heldFunction(t);
  const stack = await startProcessStack(t, fn.handler);
  // max_inflight is 1 by default: each worker takes one of the two invocations.
  const workers = [await spawnAsyncfn(t, 'worker', stack.workerEnv), await spawnAsyncfn(t, 'worker', stack.workerEnv)];
  const callIds = [`two-a-${Math.random().toString(36).slice(2)}`, `two-b-${Math.random().toString(36).slice(2)}`];
  for (const callId of callIds) await submit(t, stack.gateway.url, callId, stack.sink.url);
  await stack.fn.waitForConcurrent(2);

  const view = (await inFlight(stack.gateway.url)).view();
  t.equal(view.total, 2);
  t.same(view.workers.map((w) => w.worker).sort(), workers.map((w) => `${hostname()}:${w.child.pid}`).sort(), 'both workers answered, named by host and pid');
  t.same(
    view.workers.map((w) => w.invocations.length),
    [1, 1],
    'one invocation each',
  );
  t.same(view.workers.flatMap((w) => w.invocations.map((i) => i.callId)).sort(), [...callIds].sort());
  t.ok(
    view.workers.every((w) => w.invocations[0]?.state === 'invoking' && w.invocations[0]?.attempt === 1),
    'both invoking, attempt 1',
  );

  fn.release();
  await stack.sink.waitFor(2);
  await eventually(async () => (await inFlight(stack.gateway.url)).view().total === 0, 'both to leave the view');
});

t.test('basic_auth: 401 without credentials; with them, no worker running is 200 with an empty list; NATS down is 503', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'basic-auth-user'), 'admin\n');
  await writeFile(join(dir, 'basic-auth-password'), 'secret-password\n');
  const stack = await startStack(t, { worker: false, config: { security: { secretMountPath: dir, basicAuth: true } } });
  const admin = { authorization: `Basic ${Buffer.from('admin:secret-password').toString('base64')}` };

  const anonymous = await inFlight(stack.gateway.url);
  t.equal(anonymous.status, 401, anonymous.body);
  t.equal(anonymous.code, 'ASYNCFN_ERR_UNAUTHORIZED');
  const wrong = await inFlight(stack.gateway.url, '', { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` });
  t.equal(wrong.status, 401);

  const empty = await inFlight(stack.gateway.url, '', admin);
  t.equal(empty.status, 200, empty.body);
  t.same({ workers: empty.view().workers, total: empty.view().total }, { workers: [], total: 0 });

  await stack.nats.kill9();
  let down = empty;
  await eventually(async () => {
    down = await inFlight(stack.gateway.url, '', admin);
    return down.status === 503;
  }, 'the gateway to see NATS down');
  t.equal(down.code, 'ASYNCFN_ERR_QUEUE_UNAVAILABLE');
  t.match(down.body, /not connected to NATS/);
});
