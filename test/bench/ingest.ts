/**
 * Section 1, ingest: async 202s per second through the gateway (`asyncfn gateway` as a child
 * process; autocannon in its own process, 1 KiB bodies, 100 connections), beside LIMIT-A: the same
 * envelope published straight to a stream of the same configuration over one Node connection, 100
 * in flight, each PubAck awaited; the HTTP floor, a bare node:http server under the same load; and
 * the plain gateway (plain-gateway.mjs: the route written with node:http and nats.js as their
 * documentation shows, no checks), what the libraries give used plainly. The four take turns
 * (`rounds`), so each ratio compares runs made seconds apart. Also the gateway's RSS, idle and
 * under load, and the rate with `gateway_processes` > 1 (what more processes give on this
 * machine's cores).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeEnvelope } from '../../src/queue/envelope.js';
import { ensureStream } from '../../src/queue/topology.js';
import { rssSampler } from './memory.js';
import { row, type Row } from './report.js';
import {
  freePort,
  readCpuMs,
  readMachineBusyMs,
  readRssBytes,
  runAutocannon,
  spawnAsyncfn,
  startFixture,
  stopChild,
  type AsyncfnChild,
  type AutocannonResult,
} from './processes.js';
import { pollUntil, within } from '../helpers/eventually.js';
import { REPO_ROOT } from '../helpers/repo-root.js';
import {
  BODY,
  benchConfig,
  benchInvocation,
  connectClient,
  FUNCTION_NAME,
  inScope,
  progress,
  silentLogger,
  startNats,
  writeFunctionsFile,
  type BenchClient,
  type Scope,
} from './stack.js';
import { epochMs, median, MIB, percentile, perSecond } from './stats.js';

export interface IngestPlan {
  /** Turns of LIMIT-A, the gateway and the HTTP floor, one after the other; each figure is the median of its turns. */
  readonly rounds: number;
  /** Each turn of the gateway and of the floor under autocannon, s. */
  readonly seconds: number;
  /** Each turn of LIMIT-A, s. */
  readonly limitSeconds: number;
  /** A short untimed run of each side first, so both are measured warm; 0 to skip. */
  readonly warmupSeconds: number;
  readonly connections: number;
  /** `gateway_processes` of the extra run that shows what more processes give; 0 or 1 to skip. */
  readonly processes: number;
  /** Items of the one `POST /async-batch/<name>` timed beside the single requests. */
  readonly batchItems: number;
}

/**
 * Submits one NDJSON batch of `items` invocations (the same 1 KiB body and callback as the single
 * requests) and times it from the first byte sent to the 202, which comes after every item's PubAck.
 */
async function submitBatch(gatewayUrl: string, items: number): Promise<{ itemsPerSecond: number; accepted: number }> {
  const line = `${JSON.stringify({ body: BODY, callbackUrl: CALLBACK_URL })}\n`;
  const body = Buffer.from(line.repeat(items));
  const started = epochMs();
  const res = await fetch(`${gatewayUrl}/async-batch/${FUNCTION_NAME}`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
  const answer = (await res.json()) as { accepted?: number };
  if (res.status !== 202) throw new Error(`the batch was answered ${res.status}: ${JSON.stringify(answer)}`);
  return { itemsPerSecond: perSecond(items, epochMs() - started), accepted: answer.accepted ?? 0 };
}

export interface LimitA {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Cores busy on the machine while it ran (this process and nats-server). */
  readonly busyCores: number;
}

const SECTION = 'ingest';
/** Never called: nothing consumes in this section; the header only makes the request realistic. */
const CALLBACK_URL = 'http://127.0.0.1:9/callback';

/** Publishes for `seconds` with `inFlight` publishes outstanding, each awaiting its PubAck. */
async function measureLimitA(client: BenchClient, subject: string, inFlight: number, seconds: number): Promise<LimitA> {
  const latencies: number[] = [];
  const startedAt = epochMs();
  const deadline = startedAt + seconds * 1000;
  const lane = async (): Promise<void> => {
    while (epochMs() < deadline) {
      const { headers, data } = encodeEnvelope(benchInvocation(CALLBACK_URL));
      const sentAt = epochMs();
      await client.js.publish(subject, data, { headers, timeout: 30_000 });
      latencies.push(epochMs() - sentAt);
    }
  };
  const busyBefore = await readMachineBusyMs();
  await Promise.all(Array.from({ length: inFlight }, lane));
  const busyCores = (await readMachineBusyMs()) - busyBefore;
  const elapsedMs = epochMs() - startedAt;
  return {
    perSecond: perSecond(latencies.length, elapsedMs),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    busyCores: busyCores / elapsedMs,
  };
}

/** `asyncfn gateway` as a child process with `processes` gateway processes; resolves once it answers. */
async function startGatewayChild(
  scope: Scope,
  natsUrl: string,
  processes: number,
  env: Record<string, string> = {},
): Promise<{ child: AsyncfnChild; url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawnAsyncfn('gateway', {
    NATS_URL: natsUrl,
    // Never called: nothing consumes in this section.
    functions_file: await writeFunctionsFile(scope, CALLBACK_URL),
    gateway_port: String(port),
    gateway_host: '127.0.0.1',
    gateway_processes: String(processes),
    ...env,
  });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= child.stop(10_000));
  scope.defer(stop);
  const url = `http://127.0.0.1:${port}`;
  await pollUntil(
    async () => {
      child.assertRunning();
      return fetch(`${url}/healthz`).then(
        async (res) => (await res.arrayBuffer(), res.ok),
        () => false,
      );
    },
    'the gateway to answer /healthz',
    30_000,
  );
  return { child, url, stop };
}

/** A baseline server's rate under the load, and its (and nats-server's) CPU over the turn. */
interface BaselineTurn {
  readonly perSecond: number;
  /** The server's CPU over the turn, ms. */
  readonly cpuMs: number;
  /** nats-server's CPU over the turn, ms. */
  readonly natsMs: number;
  /** Requests answered 2xx in the turn. */
  readonly answered: number;
  /** Requests not answered 2xx (errors and time-outs included). */
  readonly failed: number;
  /** Latency of the turn's requests as autocannon read it, ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * Runs `load` for `seconds` against a baseline server: the bare node:http server that answers every
 * request 202 (the bench fixture's "accept" role: what HTTP itself costs a server, with no work
 * behind it), or the plain gateway.
 */
async function measureBaseline(
  server: { url: string; pid: number },
  natsPid: number,
  load: (url: string, seconds: number) => Promise<AutocannonResult>,
  seconds: number,
): Promise<BaselineTurn> {
  const read = () => Promise.all([readCpuMs(server.pid), readCpuMs(natsPid)]);
  const before = await read();
  const result = await load(server.url, seconds);
  const after = await read();
  return {
    perSecond: result.ok / result.durationSeconds,
    cpuMs: after[0] - before[0],
    natsMs: after[1] - before[1],
    answered: result.ok,
    failed: result.non2xx + result.errors + result.timeouts,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
  };
}

/** The median rate and latencies of `turns`, and the CPU µs per request answered over all of them (the server's, nats-server's). */
function baselineOf(turns: readonly BaselineTurn[]): { perSecond: number; p50Ms: number; p99Ms: number; cpuMicros: number; natsCpuMicros: number } {
  const answered = Math.max(
    1,
    turns.reduce((sum, f) => sum + f.answered, 0),
  );
  return {
    perSecond: median(turns.map((f) => f.perSecond)),
    p50Ms: median(turns.map((f) => f.p50Ms)),
    p99Ms: median(turns.map((f) => f.p99Ms)),
    cpuMicros: (turns.reduce((sum, f) => sum + f.cpuMs, 0) * 1000) / answered,
    natsCpuMicros: (turns.reduce((sum, f) => sum + f.natsMs, 0) * 1000) / answered,
  };
}

/** The plain gateway (plain-gateway.mjs) as a process of its own, publishing to `subject`; stopped with the scope. */
async function startPlainGateway(scope: Scope, natsUrl: string, subject: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'test/bench/plain-gateway.mjs'), natsUrl, subject], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () => stopChild(child, 'SIGTERM', 5_000);
  scope.defer(stop);
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the plain gateway exited with code ${String(code)}`);
  });
  const [line] = (await within(Promise.race([once(createInterface({ input: child.stdout }), 'line'), exited]), 30_000, 'the plain gateway to listen')) as [string];
  exited.catch(() => undefined);
  return { url: line, pid: child.pid!, stop };
}

export async function runIngest(plan: IngestPlan): Promise<{ rows: Row[]; limitA: LimitA }> {
  return inScope(async (scope) => {
    const nats = await startNats(scope);
    const config = benchConfig(nats.url);
    const client = await connectClient(scope, config);
    // LIMIT-A's own stream, configured like the queue's, so the ingest's messages do not change it.
    const limitSpec = { ...client.spec, stream: 'bench-limit-a', subject: 'bench-limit-a' };
    await ensureStream(client.jsm, limitSpec, silentLogger);
    const gateway = await startGatewayChild(scope, nats.url, 1);
    // Idle: started, answered one probe, nothing else yet.
    await delay(1_000);
    const idleRss = await readRssBytes(gateway.child.pid);

    const load = (seconds: number, url = gateway.url) =>
      runAutocannon({
        url: `${url}/async-function/${FUNCTION_NAME}`,
        connections: plan.connections,
        durationSeconds: seconds,
        body: BODY,
        headers: { 'content-type': 'application/octet-stream', 'x-callback-url': CALLBACK_URL },
      });
    // The HTTP floor: what answering these requests costs with no work behind them.
    const floorServer = await startFixture('accept');
    scope.defer(() => floorServer.stop());
    // The plain gateway publishes where the gateway does: the queue's subject, into the same stream.
    const plainGateway = await startPlainGateway(scope, nats.url, client.spec.subject);
    // The same gateway with node:http reading every request: what the front door gives, in the same turns.
    const unfronted = await startGatewayChild(scope, nats.url, 1, { front_door: 'false' });
    const unfrontedServer = { url: unfronted.url, pid: unfronted.child.pid };
    if (plan.warmupSeconds > 0) {
      progress(SECTION, `warming up for ${plan.warmupSeconds} s`);
      await measureLimitA(client, limitSpec.subject, plan.connections, plan.warmupSeconds);
      await load(plan.warmupSeconds);
      await load(plan.warmupSeconds, floorServer.url);
      await load(plan.warmupSeconds, plainGateway.url);
      await load(plan.warmupSeconds, unfronted.url);
    }
    // LIMIT-A, the gateway and the floor take turns, a few seconds each: this machine's speed moves
    // within a minute, and a ratio of two runs a minute apart measured the machine as much as the
    // gateway (BENCHMARKS.md, "LIMIT-A and the gateway measured in turns").
    const sampler = rssSampler(gateway.child.pid);
    const plainSampler = rssSampler(plainGateway.pid);
    const cpu = async (): Promise<[number, number, number, number]> => {
      const [gatewayMs, natsMs, busyMs] = await Promise.all([readCpuMs(gateway.child.pid), readCpuMs(nats.pid), readMachineBusyMs()]);
      return [gatewayMs, natsMs, busyMs, epochMs()];
    };
    const limits: LimitA[] = [];
    const results: AutocannonResult[] = [];
    const floors: BaselineTurn[] = [];
    const plains: BaselineTurn[] = [];
    const unfrontedTurns: BaselineTurn[] = [];
    // Over the gateway's turns, as cpu() reads them: the gateway's, nats-server's and the machine's busy ms, and the wall clock's.
    const spent = [0, 0, 0, 0];
    for (let round = 1; round <= plan.rounds; round++) {
      const limitA = await measureLimitA(client, limitSpec.subject, plan.connections, plan.limitSeconds);
      limits.push(limitA);
      const cpuBefore = await cpu();
      const result = await load(plan.seconds);
      const cpuAfter = await cpu();
      results.push(result);
      for (let i = 0; i < spent.length; i++) spent[i]! += cpuAfter[i]! - cpuBefore[i]!;
      const floor = await measureBaseline(floorServer, nats.pid, (url, seconds) => load(seconds, url), plan.seconds);
      floors.push(floor);
      const plainTurn = await measureBaseline(plainGateway, nats.pid, (url, seconds) => load(seconds, url), plan.seconds);
      plains.push(plainTurn);
      const unfrontedTurn = await measureBaseline(unfrontedServer, nats.pid, (url, seconds) => load(seconds, url), plan.seconds);
      unfrontedTurns.push(unfrontedTurn);
      progress(
        SECTION,
        `round ${round} of ${plan.rounds}: LIMIT-A ${limitA.perSecond.toFixed(0)} msg/s, gateway ${(result.ok / result.durationSeconds).toFixed(0)} 202/s ` +
          `(${(result.ok / result.durationSeconds / limitA.perSecond).toFixed(2)}), HTTP floor ${floor.perSecond.toFixed(0)} 202/s, ` +
          `plain gateway ${plainTurn.perSecond.toFixed(0)} 202/s (${(plainTurn.perSecond / limitA.perSecond).toFixed(2)}), ` +
          `front_door=false ${unfrontedTurn.perSecond.toFixed(0)} 202/s (${(unfrontedTurn.perSecond / limitA.perSecond).toFixed(2)})`,
      );
    }
    const loadRss = await sampler.stop();
    const plainRss = await plainSampler.stop();
    await floorServer.stop();
    await plainGateway.stop();
    await unfronted.stop();
    const ok = results.reduce((sum, r) => sum + r.ok, 0);
    // Per 202 answered; the machine's busy cores over the gateway's runs (autocannon included).
    const [gatewayCpuMicros, natsCpuMicros, busyMicros] = [0, 1, 2].map((i) => (spent[i]! * 1000) / Math.max(1, ok));
    // Everything else the machine ran meanwhile, per 202: autocannon, mostly.
    const otherCpuMicros = busyMicros! - gatewayCpuMicros! - natsCpuMicros!;
    const busyCores = spent[2]! / spent[3]!;
    const failed = results.reduce((sum, r) => sum + r.non2xx + r.errors + r.timeouts, 0);
    if (failed > 0) progress(SECTION, `warning: ${failed} requests were not answered 2xx`);
    const rates = results.map((r) => r.ok / r.durationSeconds);
    const rate = median(rates);
    const limitA: LimitA = {
      perSecond: median(limits.map((l) => l.perSecond)),
      p50Ms: median(limits.map((l) => l.p50Ms)),
      p99Ms: median(limits.map((l) => l.p99Ms)),
      busyCores: median(limits.map((l) => l.busyCores)),
    };
    const roundRatios = rates.map((r, i) => r / limits[i]!.perSecond);
    const p50 = median(results.map((r) => r.latency.p50));
    const p99 = median(results.map((r) => r.latency.p99));
    const floor = baselineOf(floors);
    const plain = baselineOf(plains);
    const unfrontedBase = baselineOf(unfrontedTurns);
    const unfrontedFailed = unfrontedTurns.reduce((sum, b) => sum + b.failed, 0);
    if (unfrontedFailed > 0) progress(SECTION, `warning: ${unfrontedFailed} requests to the gateway with front_door=false were not answered 2xx`);
    const plainFailed = plains.reduce((sum, b) => sum + b.failed, 0);
    if (plainFailed > 0) progress(SECTION, `warning: ${plainFailed} requests to the plain gateway were not answered 2xx`);
    progress(SECTION, `${rate.toFixed(0)} 202/s, gateway RSS ${(idleRss / MIB).toFixed(0)} MiB idle, ${(loadRss / MIB).toFixed(0)} MiB under load`);

    progress(SECTION, `one batch of ${plan.batchItems} items (POST /async-batch, NDJSON)`);
    const batch = await submitBatch(gateway.url, plan.batchItems);
    progress(SECTION, `batch: ${batch.accepted} items accepted, ${batch.itemsPerSecond.toFixed(0)} items/s (single requests: ${rate.toFixed(0)} 202/s)`);

    const processRows: Row[] = [];
    if (plan.processes > 1) {
      await gateway.stop();
      const many = await startGatewayChild(scope, nats.url, plan.processes);
      if (plan.warmupSeconds > 0) await load(plan.warmupSeconds, many.url);
      const seconds = plan.seconds * plan.rounds;
      progress(SECTION, `gateway_processes=${plan.processes} on ${cpus().length} cores under autocannon -c ${plan.connections} for ${seconds} s`);
      const r = await load(seconds, many.url);
      const manyFailed = r.non2xx + r.errors + r.timeouts;
      if (manyFailed > 0) progress(SECTION, `warning: ${manyFailed} requests were not answered 2xx with gateway_processes=${plan.processes}`);
      processRows.push(
        row('ingest.processes.rate', '1 ingest', `async 202/s with gateway_processes=${plan.processes} (${cpus().length} cores) vs LIMIT-A`, r.ok / r.durationSeconds, {
          limit: limitA.perSecond,
        }),
        row('ingest.processes.p50', '1 ingest', `202 latency p50 ms with gateway_processes=${plan.processes}`, r.latency.p50),
      );
      await many.stop();
    }
    const turns = plan.rounds > 1 ? `, median of ${plan.rounds} turns` : '';
    const rows = [
      row('ingest.rate', '1 ingest', `async 202/s (1 KiB, c=${plan.connections}) vs LIMIT-A publish+PubAck/s${turns}`, rate, {
        limit: limitA.perSecond,
        target: { ratioMin: 0.6 },
      }),
      row('ingest.rate.lowest', '1 ingest', 'lowest of the turns: 202/s / LIMIT-A of the same turn', Math.min(...roundRatios)),
      row('ingest.rate.highest', '1 ingest', 'highest of the turns: 202/s / LIMIT-A of the same turn', Math.max(...roundRatios)),
      row('ingest.p50', '1 ingest', `202 latency p50 ms (limit: LIMIT-A publish p50)${turns}`, p50, {
        limit: limitA.p50Ms,
        ratio: false,
        target: { max: 8 },
      }),
      row('ingest.p99', '1 ingest', `202 latency p99 ms (limit: LIMIT-A publish p99)${turns}`, p99, {
        limit: limitA.p99Ms,
        ratio: false,
        target: { max: 25 },
      }),
      row('ingest.failed', '1 ingest', 'requests not answered 2xx', failed, { target: { max: 0 } }),
      row('ingest.batch.rate', '1 ingest', `batch items/s (one POST /async-batch of ${plan.batchItems}, 1 KiB each) vs single-request 202/s`, batch.itemsPerSecond, {
        limit: rate,
      }),
      row('ingest.limitA.busyCores', '1 ingest', 'cores busy during LIMIT-A (the bench publishing and nats-server)', limitA.busyCores),
      row('ingest.gatewayCpu', '1 ingest', 'gateway CPU µs per 202 under autocannon', gatewayCpuMicros!),
      row('ingest.natsCpu', '1 ingest', "nats-server's CPU µs per 202 under autocannon", natsCpuMicros!),
      row('ingest.otherCpu', '1 ingest', 'the rest of the machine (autocannon, mostly): CPU µs per 202 during the run', otherCpuMicros),
      row('ingest.floor.cpu', '1 ingest', 'HTTP floor: CPU µs per request of a bare node:http server answering 202 under the same autocannon', floor.cpuMicros),
      row('ingest.floor.rate', '1 ingest', `HTTP floor: the bare server's 202/s under the same autocannon (limit: the gateway's)${turns}`, floor.perSecond, {
        limit: rate,
      }),
      // What c=100 costs in latency on this machine with no work behind the answers: the floor under the two latency targets.
      row('ingest.floor.p50', '1 ingest', `HTTP floor: the bare server's latency p50 ms under the same autocannon (limit: the gateway's)${turns}`, floor.p50Ms, {
        limit: p50,
        ratio: false,
      }),
      row('ingest.floor.p99', '1 ingest', `HTTP floor: the bare server's latency p99 ms under the same autocannon (limit: the gateway's)${turns}`, floor.p99Ms, {
        limit: p99,
        ratio: false,
      }),
      row(
        'ingest.busyCores',
        '1 ingest',
        `cores busy on this machine during the run (of ${cpus().length}; autocannon, the gateway and nats-server share them)`,
        busyCores,
      ),
      row('ingest.plain.rate', '1 ingest', `the plain gateway's 202/s (node:http and nats.js as their docs show, no checks) vs LIMIT-A${turns}`, plain.perSecond, {
        limit: limitA.perSecond,
      }),
      row('ingest.vsPlain', '1 ingest', "async 202/s vs the plain gateway's", rate, { limit: plain.perSecond }),
      row('ingest.plain.cpu', '1 ingest', "the plain gateway's CPU µs per 202 (limit: the gateway's)", plain.cpuMicros, { limit: gatewayCpuMicros! }),
      row('ingest.plain.natsCpu', '1 ingest', "nats-server's CPU µs per 202 of the plain gateway (limit: per 202 of the gateway)", plain.natsCpuMicros, {
        limit: natsCpuMicros!,
      }),
      row('ingest.plain.rss', '1 ingest', "the plain gateway's RSS MiB under the same autocannon (peak; limit: the gateway's)", plainRss / MIB, {
        limit: loadRss / MIB,
      }),
      row('ingest.unfronted.rate', '1 ingest', `the gateway's 202/s with front_door=false (node:http reads every request) vs with${turns}`, unfrontedBase.perSecond, {
        limit: rate,
      }),
      row('ingest.unfronted.cpu', '1 ingest', "the gateway's CPU µs per 202 with front_door=false (limit: with)", unfrontedBase.cpuMicros, {
        limit: gatewayCpuMicros!,
      }),
      row('ingest.rss.idle', '1 ingest', 'gateway RSS MiB, idle after start', idleRss / MIB),
      row('ingest.rss.load', '1 ingest', `gateway RSS MiB under autocannon -c ${plan.connections} (peak)`, loadRss / MIB, { target: { max: 80 } }),
      ...processRows,
    ];
    return { rows, limitA };
  });
}
