import { EventEmitter } from 'node:events';
import t from 'tap';
import { configFor, resolverFor, spawnAsyncfn, startProcessStack, startTestWorker, writeFunctionsFile } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { type CallbackSink, type Handler } from '../helpers/http-servers.js';
import { waitForEvent } from '../helpers/eventually.js';

const WORKERS = ['w1', 'w2', 'w3'] as const;
const MAX_INFLIGHT = 4;
const PER_PHASE = 150;
/** How long the function takes: long enough that every slot fills while the backlog lasts. */
const FUNCTION_MS = 80;

/** What one worker made the function do, as the function saw it. */
interface WorkerLoad {
  started: number;
  finished: number;
  /** Calls cut off before they answered (their worker died). */
  cutOff: number;
  running: number;
  maxRunning: number;
}

/**
 * A function that answers after `ms` and keeps count, per worker and in total, of the calls it
 * is running. Which worker called is told by the request path: each worker resolves function
 * "work" to its own `<function url>/<worker>` (through its functions file, or its resolver when it
 * runs in this process). That holds whatever the connection pooling, unlike guessing from source
 * ports, and needs nothing from asyncfn that only a test would use.
 */
function countingFunction(ms: number) {
  const events = new EventEmitter();
  const load = new Map<string, WorkerLoad>(WORKERS.map((w) => [w, { started: 0, finished: 0, cutOff: 0, running: 0, maxRunning: 0 }]));
  let running = 0;
  let maxRunning = 0;
  const handler: Handler = (req, res) =>
    new Promise<void>((resolve) => {
      const worker = load.get(req.url.split('/')[1] ?? '');
      if (!worker) {
        res.writeHead(404).end();
        resolve();
        return;
      }
      worker.started += 1;
      worker.running += 1;
      worker.maxRunning = Math.max(worker.maxRunning, worker.running);
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      events.emit('change');
      let settled = false;
      const settle = (answered: boolean): void => {
        if (settled) return;
        settled = true;
        worker.running -= 1;
        running -= 1;
        if (answered) worker.finished += 1;
        else worker.cutOff += 1;
        events.emit('change');
        resolve();
      };
      const timer = setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('done');
        settle(true);
      }, ms);
      res.once('close', () => {
        clearTimeout(timer);
        settle(false);
      });
    });
  return {
    handler,
    load,
    worker: (name: string): WorkerLoad => load.get(name) ?? { started: 0, finished: 0, cutOff: 0, running: 0, maxRunning: 0 },
    get maxRunning() {
      return maxRunning;
    },
    /** Starts a new phase: the highest concurrency is counted from now. */
    resetMax: () => (maxRunning = running),
    waitUntil: (condition: () => boolean, what: string, timeoutMs = 20_000) => waitForEvent(events, 'change', condition, what, timeoutMs),
  };
}

/** Enqueues `count` invocations, `parallel` at a time, so the backlog builds faster than three workers drain it. */
async function enqueueParallel(gatewayUrl: string, count: number, callbackUrl: string, label: string, parallel = 12): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        const [id] = await enqueueMany(gatewayUrl, 'work', 1, callbackUrl, () => `${label}-${i}`);
        ids.push(id!);
      }
    }),
  );
  return ids;
}

/** Waits (bounded in time) for a callback for every id; returns those still missing. */
async function missingCallbacks(sink: CallbackSink, ids: readonly string[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (const id of ids) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sink.waitForCallId(id, left).catch(() => undefined);
  }
  const done = new Set(sink.received.map((r) => String(r.headers['x-call-id'])));
  return ids.filter((id) => !done.has(id));
}

function callIdsOf(sink: CallbackSink): string[] {
  return sink.received.map((r) => String(r.headers['x-call-id']));
}

t.test('three workers on one durable consumer share the load within max_inflight × 3, and losing one loses nothing', async (t) => {
  const fn = countingFunction(FUNCTION_MS);
  const { nats, sink, gateway, workerEnv, fn: server } = await startProcessStack(t, fn.handler);
  const functionFor = (name: string): string => `${server.url}/${name}`;
  // w1, the one to be killed, is a process of its own; w2 and w3 run in this process (a worker
  // started from source takes seconds of CPU, which a busy 2-core CI box cannot spare three times).
  // All three start at once, as the replicas of a Deployment do, and provision the same consumer
  // concurrently: JetStream takes an identical create as a no-op. ack_wait 2 s: what a killed
  // worker held comes back to the others quickly.
  const config = configFor(nats.url, { worker: { maxInflight: MAX_INFLIGHT, ackWaitMs: 2_000 } });
  const [victimProcess] = await Promise.all([
    writeFunctionsFile(t, { work: functionFor('w1') }).then((file) =>
      spawnAsyncfn(t, 'worker', { ...workerEnv, functions_file: file, max_inflight: String(MAX_INFLIGHT), ack_wait: '2s' }),
    ),
    startTestWorker(t, config, resolverFor({ work: functionFor('w2') })),
    startTestWorker(t, config, resolverFor({ work: functionFor('w3') })),
  ]);
  const limit = MAX_INFLIGHT * WORKERS.length;

  // Phase 1: all three share the work.
  const phase1 = await enqueueParallel(gateway.url, PER_PHASE, sink.url, 'p1');
  t.same(await missingCallbacks(sink, phase1, 30_000), [], `phase 1: all ${PER_PHASE} completed`);
  const shares = WORKERS.map((w) => fn.worker(w).finished);
  t.comment(
    `scale-out phase 1 (3 workers × max_inflight ${MAX_INFLIGHT}): ${PER_PHASE} invocations, per worker ${shares.join(' / ')}, ` +
      `highest concurrency ${fn.maxRunning} (limit ${limit}), per worker ${WORKERS.map((w) => fn.worker(w).maxRunning).join(' / ')}, ` +
      `duplicates ${callIdsOf(sink).length - new Set(callIdsOf(sink)).size}`,
  );
  for (const [i, w] of WORKERS.entries()) t.ok(shares[i]! > 0.15 * PER_PHASE, `${w} did a fair part: ${shares[i]} of ${PER_PHASE}`);
  t.ok(fn.maxRunning <= limit, `total concurrency ${fn.maxRunning} never exceeded max_inflight × replicas (${limit})`);
  t.ok(fn.maxRunning > MAX_INFLIGHT, 'more than one worker ran at once');
  for (const w of WORKERS) t.ok(fn.worker(w).maxRunning <= MAX_INFLIGHT, `${w} never ran more than max_inflight`);

  // Phase 2: kill -9 one worker in the middle of the load.
  const before = new Map(WORKERS.map((w) => [w, { ...fn.worker(w) }]));
  const receivedBefore = sink.received.length;
  const callsAtPhase2 = server.requests.length;
  const enqueuing = enqueueParallel(gateway.url, PER_PHASE, sink.url, 'p2');
  const victim = fn.worker('w1');
  await fn.waitUntil(() => victim.finished - before.get('w1')!.finished >= 2 * MAX_INFLIGHT && victim.running === MAX_INFLIGHT, 'w1 to be busy with phase 2');
  const runningAtKill = victim.running;
  await victimProcess.kill9();
  // Calls of w1 still running when it died are either cut off or answered to nobody.
  await fn.waitUntil(() => victim.running === 0, "w1's calls to end", 5_000);
  fn.resetMax();
  const phase2 = await enqueuing;
  const missing = await missingCallbacks(sink, phase2, 30_000);

  const ids = callIdsOf(sink).slice(receivedBefore);
  const completed = new Set(ids.filter((id) => phase2.includes(id)));
  const duplicates = ids.length - new Set(ids).size;
  const done = (w: (typeof WORKERS)[number]): number => fn.worker(w).finished - before.get(w)!.finished;
  const cutOff = victim.cutOff - before.get('w1')!.cutOff;
  const reruns = server.requests.length - callsAtPhase2 - PER_PHASE;
  t.comment(
    `scale-out phase 2 (kill -9 of w1 mid-load): accepted ${phase2.length}, completed ${completed.size}, lost ${missing.length}, ` +
      `duplicates ${duplicates}; w1 answered ${done('w1')} (${runningAtKill} calls were running at the kill, ${cutOff} of them cut off before answering), ` +
      `w2 ${done('w2')}, w3 ${done('w3')}; function calls run again ${reruns}; ` +
      `highest concurrency after the kill ${fn.maxRunning} (limit ${2 * MAX_INFLIGHT})`,
  );
  t.same(missing, [], 'lost: every accepted invocation completed after the kill');
  t.equal(completed.size, PER_PHASE, `all ${PER_PHASE} call ids completed`);
  t.ok(fn.maxRunning <= 2 * MAX_INFLIGHT, 'the two survivors stayed within their max_inflight');
  const failed = sink.received.filter((cb) => cb.headers['x-function-status'] !== '200');
  t.same(
    failed.map((cb) => cb.headers['x-call-id']),
    [],
    "every callback reports the function's 200",
  );
});
