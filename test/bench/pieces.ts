/**
 * Section 6, pieces: micro-benchmarks of the per-invocation building blocks, in this process.
 * CPU is process CPU time (user + system, all threads) over the operations; the nats-server
 * is a process of its own, so its work is not counted. No targets: issue 12 asks for the
 * machine's µs per invocation to be reported; the confirmer rows show nats.js as their limit
 * (ratio < 1 for CPU means the confirmer is cheaper).
 */
import { randomUUID } from 'node:crypto';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { MsgHdrsImpl } from '@nats-io/nats-core';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createConfirmer, type Confirmer } from '../../src/queue/confirmer.js';
import { decodeEnvelope, encodeEnvelope, encodeEnvelopeBlock } from '../../src/queue/envelope.js';
import { readHeaderBlock } from '../../src/queue/header-block.js';
import { functionRateKey, sharedRateLimiter } from '../../src/flow/index.js';
import { openRateLimitsBucket } from '../../src/queue/topology.js';
import { HAPPY_FINAL_STATE, prepareMachineRun } from './machine-once.js';
import { Agent, request } from 'undici';
import { Counter, Histogram, Registry } from 'prom-client';
import { responseCounter } from '../../src/gateway/metrics-hooks.js';
import { gatewayMetrics } from '../../src/telemetry/metrics.js';
import { createHttpClient } from '../../src/http/client.js';
import { deferWrite } from '../../src/queue/write-batch.js';
import { exchange } from '../../src/http/exchange.js';
import { ResponseParser } from '../../src/http/h1/response-parser.js';
import { startFixture } from './processes.js';
import { row, type Row } from './report.js';
import { SAMPLE_ANSWERS, SAMPLE_INVOCATION } from './samples.js';
import { inScope, progress, startNats } from './stack.js';
import { perSecond } from './stats.js';
import { windowed } from './windowed.js';

export interface PiecesPlan {
  /** Encodes (and decodes) per measurement. */
  readonly envelopeOps: number;
  /** Machine runs per measurement, `machineConcurrency` at a time (the worker's max_inflight). */
  readonly machineRuns: number;
  readonly machineConcurrency: number;
  /** Confirmed 1 KiB publishes per client per round, `window` in flight. */
  readonly publishes: number;
  /** Double acks per client per round, `window` in flight. */
  readonly acks: number;
  readonly window: number;
  /** HTTP exchanges per client per round, `machineConcurrency` at a time. */
  readonly exchanges: number;
  /** Rate-limit acquires (and plain KV puts) per round, one at a time. */
  readonly rateAcquires: number;
  /** Rounds of each comparison, alternating the clients; the median round is reported. */
  readonly rounds: number;
}

const S = '6 pieces';
const KIB = new Uint8Array(1024).fill(120);

interface Measured {
  /** Process CPU µs per operation. */
  readonly cpuMicros: number;
  readonly perSecond: number;
}

async function measure(count: number, body: () => unknown): Promise<Measured> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await body();
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpuMicros: (cpu.user + cpu.system) / count, perSecond: perSecond(count, elapsedMs) };
}

function median(values: readonly Measured[]): Measured {
  const sorted = [...values].sort((a, b) => a.cpuMicros - b.cpuMicros);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function envelopeRows(plan: PiecesPlan): Promise<Row[]> {
  const invocation = SAMPLE_INVOCATION;
  const encoded = encodeEnvelope(invocation);
  const headerBytes = (encoded.headers as MsgHdrsImpl).encode();
  let sink = 0;
  const encode = (n: number): void => {
    for (let i = 0; i < n; i++) sink += (encodeEnvelope(invocation).headers as MsgHdrsImpl).encode().length;
  };
  // What the gateway's publisher does instead: the same block written as text (header-block.ts).
  const encodeBlock = (n: number): void => {
    for (let i = 0; i < n; i++) sink += encodeEnvelopeBlock(invocation).length;
  };
  // A delivered message's headers arrive as bytes; the worker parses them, then decodes.
  const decode = (n: number): void => {
    for (let i = 0; i < n; i++) sink += decodeEnvelope(MsgHdrsImpl.decode(headerBytes), encoded.data).headers.length;
  };
  // What the worker does instead: the block read as text (readHeaderBlock), then decoded.
  const decodeRead = (n: number): void => {
    for (let i = 0; i < n; i++) sink += decodeEnvelope(readHeaderBlock(headerBytes), encoded.data).headers.length;
  };
  return (async () => {
    encode(plan.envelopeOps / 10);
    encodeBlock(plan.envelopeOps / 10);
    decode(plan.envelopeOps / 10);
    decodeRead(plan.envelopeOps / 10);
    const enc = await measure(plan.envelopeOps, () => encode(plan.envelopeOps));
    const block = await measure(plan.envelopeOps, () => encodeBlock(plan.envelopeOps));
    const dec = await measure(plan.envelopeOps, () => decode(plan.envelopeOps));
    const read = await measure(plan.envelopeOps, () => decodeRead(plan.envelopeOps));
    if (sink === 0) throw new Error('nothing encoded');
    return [
      row(
        'pieces.envelope.encode',
        S,
        `encodeEnvelope + header block, 1 KiB invocation with 4 caller headers: CPU µs/op (${headerBytes.length} header bytes)`,
        enc.cpuMicros,
      ),
      row(
        'pieces.envelope.block',
        S,
        "encodeEnvelopeBlock (the gateway's publish: the same bytes written as text, no nats.js MsgHdrs): CPU µs/op vs encodeEnvelope",
        block.cpuMicros,
        { limit: enc.cpuMicros },
      ),
      row('pieces.envelope.decode', S, 'NATS header parse + decodeEnvelope of the same: CPU µs/op', dec.cpuMicros),
      row(
        'pieces.envelope.read',
        S,
        "readHeaderBlock + decodeEnvelope (the worker's reading: the block read as text, no nats.js MsgHdrs): CPU µs/op vs nats.js's parse",
        read.cpuMicros,
        { limit: dec.cpuMicros },
      ),
    ];
  })();
}

/**
 * The gateway's metrics of one `202` (two by route, three by function): its response counter, on
 * bound children, against the same five updates through prom-client's Counter and Histogram, as
 * the gateway made them before (a label object hashed per update).
 */
function metricsRows(plan: PiecesPlan): Promise<Row[]> {
  const count = responseCounter(gatewayMetrics(new Registry()));
  const registry = new Registry();
  const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200];
  const plain = {
    requests: new Counter({ name: 'r_total', help: 'h', labelNames: ['method', 'path', 'status'], registers: [registry] }),
    requestSeconds: new Histogram({ name: 'r_seconds', help: 'h', labelNames: ['method', 'path', 'status'], buckets, registers: [registry] }),
    started: new Counter({ name: 's_total', help: 'h', labelNames: ['function_name'], registers: [registry] }),
    invocations: new Counter({ name: 'i_total', help: 'h', labelNames: ['function_name', 'code'], registers: [registry] }),
    seconds: new Histogram({ name: 'i_seconds', help: 'h', labelNames: ['function_name', 'code'], buckets, registers: [registry] }),
  };
  const request = { method: 'POST', url: '/async-function/bench' };
  const bound = (n: number): void => {
    for (let i = 0; i < n; i++) {
      count.started('bench');
      count(request, '/async-function/*', 202, 0.001 + (i % 7) / 1000, 'bench');
    }
  };
  const viaPromClient = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const seconds = 0.001 + (i % 7) / 1000;
      plain.requests.inc({ method: 'POST', path: '/async-function/*', status: '202' });
      plain.requestSeconds.observe({ method: 'POST', path: '/async-function/*', status: '202' }, seconds);
      plain.started.inc({ function_name: 'bench' });
      plain.invocations.inc({ function_name: 'bench', code: '202' });
      plain.seconds.observe({ function_name: 'bench', code: '202' }, seconds);
    }
  };
  return (async () => {
    bound(plan.envelopeOps / 10);
    viaPromClient(plan.envelopeOps / 10);
    const b = await measure(plan.envelopeOps, () => bound(plan.envelopeOps));
    const p = await measure(plan.envelopeOps, () => viaPromClient(plan.envelopeOps));
    return [
      row('pieces.metrics.promClient', S, "the gateway's metrics of one 202 (two by route, three by function) through prom-client's labels: CPU µs/op", p.cpuMicros),
      row('pieces.metrics.bound', S, "the same through bound children (the gateway's response counter): CPU µs/op vs prom-client's labels", b.cpuMicros, {
        limit: p.cpuMicros,
      }),
    ];
  })();
}

async function machineRows(plan: PiecesPlan): Promise<Row[]> {
  const runOnce = prepareMachineRun(SAMPLE_INVOCATION);
  const run = async (n: number): Promise<void> =>
    windowed(n, plan.machineConcurrency, async () => {
      const final = await runOnce();
      if (final !== HAPPY_FINAL_STATE) throw new Error(`machine ended in ${final}, expected ${HAPPY_FINAL_STATE}`);
    });
  await run(Math.ceil(plan.machineRuns / 10));
  const rounds: Measured[] = [];
  for (let r = 0; r < plan.rounds; r++) rounds.push(await measure(plan.machineRuns, () => run(plan.machineRuns)));
  const m = median(rounds);
  return [
    row(
      'pieces.machine',
      S,
      `invocation machine alone, happy path with instant fakes (function 200, callback, ackAck), ${plan.machineConcurrency} at a time: CPU µs per invocation`,
      m.cpuMicros,
    ),
    row('pieces.machine.rate', S, 'invocation machine alone: invocations/s', m.perSecond),
  ];
}

/**
 * The worker's HTTP/1.1 response parser (src/http/h1/response-parser.ts) on the two answers a
 * drain reads per invocation, as node:http writes them: the function's 200 with a 2-byte body, the
 * callback sink's 202. The head is most of it, and building its header object ~40 % of the head
 * (BENCHMARKS.md, "The response head in one pass").
 */
function parserRows(plan: PiecesPlan): Promise<Row[]> {
  const [fnAnswer, sinkAnswer] = SAMPLE_ANSWERS as [Buffer, Buffer];
  let heads = 0;
  const sink = { head: () => void (heads += 1), data: () => undefined };
  const parser = new ResponseParser(sink, 16 * 1024);
  // Two answers per pass: µs per answer is half the pass's.
  const parse = (n: number): void => {
    for (let i = 0; i < n / 2; i++) {
      parser.reset(sink);
      parser.execute(fnAnswer);
      parser.reset(sink);
      parser.execute(sinkAnswer);
    }
  };
  return (async () => {
    parse(plan.envelopeOps / 10);
    const m = await measure(plan.envelopeOps, () => parse(plan.envelopeOps));
    if (heads === 0) throw new Error('nothing parsed');
    return [
      row(
        'pieces.http.parse',
        S,
        "the worker's response parser, a function's 200 and a callback sink's 202 as node:http writes them (5 header lines each): CPU µs per response",
        m.cpuMicros,
      ),
    ];
  })();
}

/**
 * One function call as the worker makes it: POST 1 KiB, read the 1 KiB answer, bounded by a
 * timeout. Four ways: undici's request() with an AbortController and a timer, as the worker
 * called functions before issue 12; exchange() through undici's dispatch (what https and streamed
 * bodies still take); exchange() through asyncfn's own HTTP/1.1 connections (src/http/h1/), which
 * carry plain http: requests, writing each request at once; and the same with the requests
 * written in the process's write batch at the end of the I/O phase, as the worker writes them.
 * The function is a process of its own, so its side of the batching does not show here.
 */
async function httpRows(plan: PiecesPlan, functionUrl: string): Promise<Row[]> {
  const agent = new Agent({ connections: plan.machineConcurrency, headersTimeout: 0, bodyTimeout: 0 });
  const own = createHttpClient({ connectionsPerOrigin: plan.machineConcurrency });
  const batched = createHttpClient({ connectionsPerOrigin: plan.machineConcurrency, deferWrite });
  const headers = { 'content-type': 'application/octet-stream', 'x-call-id': randomUUID() };
  const viaRequest = async (): Promise<void> => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 60_000);
    try {
      const response = await request(functionUrl, { method: 'POST', headers, body: KIB, signal: controller.signal, dispatcher: agent });
      await response.body.arrayBuffer();
    } finally {
      clearTimeout(timer);
    }
  };
  const viaExchange = async (): Promise<void> => {
    await exchange(agent, { url: functionUrl, method: 'POST', headers, body: KIB }, { timeoutMs: 60_000 });
  };
  const viaOwn = async (): Promise<void> => {
    await exchange(own, { url: functionUrl, method: 'POST', headers, body: KIB }, { timeoutMs: 60_000 });
  };
  const viaBatched = async (): Promise<void> => {
    await exchange(batched, { url: functionUrl, method: 'POST', headers, body: KIB }, { timeoutMs: 60_000 });
  };
  try {
    const rounds = { request: [] as Measured[], exchange: [] as Measured[], own: [] as Measured[], batched: [] as Measured[] };
    await windowed(plan.exchanges / 10, plan.machineConcurrency, viaRequest);
    await windowed(plan.exchanges / 10, plan.machineConcurrency, viaExchange);
    await windowed(plan.exchanges / 10, plan.machineConcurrency, viaOwn);
    await windowed(plan.exchanges / 10, plan.machineConcurrency, viaBatched);
    for (let r = 0; r < plan.rounds; r++) {
      rounds.request.push(await measure(plan.exchanges, () => windowed(plan.exchanges, plan.machineConcurrency, viaRequest)));
      rounds.exchange.push(await measure(plan.exchanges, () => windowed(plan.exchanges, plan.machineConcurrency, viaExchange)));
      rounds.own.push(await measure(plan.exchanges, () => windowed(plan.exchanges, plan.machineConcurrency, viaOwn)));
      rounds.batched.push(await measure(plan.exchanges, () => windowed(plan.exchanges, plan.machineConcurrency, viaBatched)));
    }
    const [q, x, o, b] = [median(rounds.request), median(rounds.exchange), median(rounds.own), median(rounds.batched)];
    const what = `POST 1 KiB, 1 KiB answer, ${plan.machineConcurrency} at a time, 60 s timeout`;
    return [
      row('pieces.http.request.cpu', S, `undici request() + AbortController + timer (the worker's calls before issue 12), ${what}: process CPU µs per call`, q.cpuMicros),
      row('pieces.http.exchange.cpu', S, "exchange() through undici's dispatch (https, streamed bodies): process CPU µs per call vs request()", x.cpuMicros, {
        limit: q.cpuMicros,
      }),
      row('pieces.http.exchange.rate', S, 'exchange(): calls/s vs request()', x.perSecond, { limit: q.perSecond }),
      row(
        'pieces.http.own.cpu',
        S,
        "exchange() through the worker's client (asyncfn's HTTP/1.1 for plain http:): process CPU µs per call vs undici's dispatch",
        o.cpuMicros,
        {
          limit: x.cpuMicros,
        },
      ),
      row('pieces.http.own.rate', S, "the worker's client: calls/s vs undici's dispatch", o.perSecond, { limit: x.perSecond }),
      row(
        'pieces.http.batched.cpu',
        S,
        "the same client with each request written in the process's write batch, as the worker writes them: process CPU µs per call vs written at once",
        b.cpuMicros,
        { limit: o.cpuMicros },
      ),
      row('pieces.http.batched.rate', S, 'the same, batched: calls/s vs written at once', b.perSecond, { limit: o.perSecond }),
    ];
  } finally {
    await agent.close();
    await own.destroy();
    await batched.destroy();
  }
}

interface Clients {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly confirmer: Confirmer;
}

async function publishRows(plan: PiecesPlan, c: Clients): Promise<Row[]> {
  const jsm = await jetstreamManager(c.nc);
  await jsm.streams.add({ name: 'pieces-publish', subjects: ['pieces.publish.>'] });
  const viaNatsJs = (n: number): Promise<void> => windowed(n, plan.window, () => c.js.publish('pieces.publish.a', KIB, { timeout: 30_000 }));
  const viaConfirmer = (n: number): Promise<void> => windowed(n, plan.window, () => c.confirmer.publish('pieces.publish.a', KIB, { timeoutMs: 30_000 }));
  await viaNatsJs(Math.ceil(plan.publishes / 10));
  await viaConfirmer(Math.ceil(plan.publishes / 10));
  const natsJs: Measured[] = [];
  const confirmer: Measured[] = [];
  for (let r = 0; r < plan.rounds; r++) {
    natsJs.push(await measure(plan.publishes, () => viaNatsJs(plan.publishes)));
    confirmer.push(await measure(plan.publishes, () => viaConfirmer(plan.publishes)));
  }
  // Every confirmed publish must be in the stream: a confirmer that resolved too early would show here.
  const stored = (await jsm.streams.info('pieces-publish')).state.messages;
  const expected = 2 * Math.ceil(plan.publishes / 10) + 2 * plan.rounds * plan.publishes;
  if (stored !== expected) throw new Error(`stream holds ${stored} messages, ${expected} were confirmed`);
  const n = median(natsJs);
  const k = median(confirmer);
  const what = `1 KiB, ${plan.window} in flight, PubAck awaited`;
  return [
    row('pieces.publish.natsjs.rate', S, `js.publish (nats.js), ${what}: msgs/s`, n.perSecond),
    row('pieces.publish.natsjs.cpu', S, 'js.publish (nats.js): process CPU µs per publish', n.cpuMicros),
    row('pieces.publish.confirmer.rate', S, 'confirmer.publish, same: msgs/s vs nats.js', k.perSecond, { limit: n.perSecond }),
    row('pieces.publish.confirmer.cpu', S, 'confirmer.publish: process CPU µs per publish vs nats.js', k.cpuMicros, { limit: n.cpuMicros }),
  ];
}

/** Holds `count` delivered, unacked messages of a fresh durable consumer. */
async function heldMessages(c: Clients, stream: string, count: number): Promise<{ held: JsMsg[]; durable: string }> {
  const jsm = await jetstreamManager(c.nc);
  const durable = `d-${randomUUID().slice(0, 8)}`;
  await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: 300_000_000_000, max_ack_pending: -1 });
  const consumer = await c.js.consumers.get(stream, durable);
  const held: JsMsg[] = [];
  while (held.length < count) {
    const before = held.length;
    const batch = await consumer.fetch({ max_messages: Math.min(1_000, count - held.length), expires: 5_000 });
    for await (const m of batch) held.push(m);
    if (held.length === before) throw new Error(`consumer ${durable} delivered only ${held.length} of ${count} messages`);
  }
  return { held, durable };
}

async function ackRows(plan: PiecesPlan, c: Clients): Promise<Row[]> {
  const jsm = await jetstreamManager(c.nc);
  const stream = 'pieces-acks';
  await jsm.streams.add({ name: stream, subjects: ['pieces.acks.>'] });
  await windowed(plan.acks, plan.window, () => c.confirmer.publish('pieces.acks.a', KIB.subarray(0, 16)));
  /** Acks `n` held messages with `ackAck`, then checks the consumer has none left pending. */
  const acking = async (n: number, ackAck: (m: JsMsg) => Promise<boolean>): Promise<Measured> => {
    const { held, durable } = await heldMessages(c, stream, n);
    const measured = await measure(n, () =>
      windowed(n, plan.window, async (i) => {
        if (!(await ackAck(held[i]!))) throw new Error('ackAck not confirmed');
      }),
    );
    const left = (await jsm.consumers.info(stream, durable)).num_ack_pending;
    if (left !== 0) throw new Error(`${left} messages still pending on ${durable} after confirmed acks`);
    await jsm.consumers.delete(stream, durable);
    return measured;
  };
  const viaNatsJs = (n: number): Promise<Measured> => acking(n, (m) => m.ackAck({ timeout: 30_000 }));
  const viaConfirmer = (n: number): Promise<Measured> => acking(n, (m) => c.confirmer.ackAck(m, { timeoutMs: 30_000 }));
  await viaNatsJs(Math.ceil(plan.acks / 10));
  await viaConfirmer(Math.ceil(plan.acks / 10));
  const natsJs: Measured[] = [];
  const confirmer: Measured[] = [];
  for (let r = 0; r < plan.rounds; r++) {
    natsJs.push(await viaNatsJs(plan.acks));
    confirmer.push(await viaConfirmer(plan.acks));
  }
  const n = median(natsJs);
  const k = median(confirmer);
  return [
    row('pieces.ackAck.natsjs.rate', S, `msg.ackAck() (nats.js), ${plan.window} in flight, messages already delivered: acks/s`, n.perSecond),
    row('pieces.ackAck.natsjs.cpu', S, 'msg.ackAck() (nats.js): process CPU µs per ack', n.cpuMicros),
    row('pieces.ackAck.confirmer.rate', S, 'confirmer.ackAck, same: acks/s vs nats.js', k.perSecond, { limit: n.perSecond }),
    row('pieces.ackAck.confirmer.cpu', S, 'confirmer.ackAck: process CPU µs per ack vs nats.js', k.cpuMicros, { limit: n.cpuMicros }),
  ];
}

/**
 * One uncontended rate-limit acquire (src/flow/shared-rate-limiter.ts), as a worker makes it before
 * a pull: the limiter's remembered revision is current, so it is one KV update with the expected
 * revision. Its limit is a plain `kv.put` of the same value (one round trip, no revision check).
 */
async function rateLimitRows(plan: PiecesPlan, nc: NatsConnection): Promise<Row[]> {
  const kv = await openRateLimitsBucket(nc, { replicas: 1, storage: 'file' });
  const limiter = sharedRateLimiter(kv);
  const key = functionRateKey({ name: 'bench', namespace: 'openfaas-fn' });
  // A rate no bench reaches: every acquire is granted, so every one writes.
  const rate = { count: 1_000_000_000, periodMs: 1_000 };
  const viaLimiter = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      if ((await limiter.acquire(key, 1, rate)).granted !== 1) throw new Error('the bench rate limit refused a token');
    }
  };
  const viaPut = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await kv.put('bench.put', String(Date.now()));
  };
  await viaLimiter(Math.ceil(plan.rateAcquires / 10));
  await viaPut(Math.ceil(plan.rateAcquires / 10));
  const limited: Measured[] = [];
  const puts: Measured[] = [];
  for (let r = 0; r < plan.rounds; r++) {
    limited.push(await measure(plan.rateAcquires, () => viaLimiter(plan.rateAcquires)));
    puts.push(await measure(plan.rateAcquires, () => viaPut(plan.rateAcquires)));
  }
  const [l, p] = [median(limited), median(puts)];
  return [
    row(
      'pieces.rateLimit.acquire.rate',
      S,
      'shared rate limiter, one uncontended acquire at a time (one KV update at the known revision): acquires/s vs kv.put',
      l.perSecond,
      {
        limit: p.perSecond,
      },
    ),
    row('pieces.rateLimit.acquire.cpu', S, 'shared rate limiter acquire: process CPU µs per acquire vs kv.put', l.cpuMicros, { limit: p.cpuMicros }),
  ];
}

export async function runPieces(plan: PiecesPlan): Promise<Row[]> {
  const rows: Row[] = [];
  progress('pieces', 'envelope');
  rows.push(...(await envelopeRows(plan)));
  progress('pieces', 'metrics');
  rows.push(...(await metricsRows(plan)));
  progress('pieces', 'machine');
  rows.push(...(await machineRows(plan)));
  progress('pieces', 'http: the response parser');
  rows.push(...(await parserRows(plan)));
  progress('pieces', 'http: exchange vs request');
  await inScope(async (scope) => {
    const fn = await startFixture('function');
    scope.defer(() => fn.stop());
    rows.push(...(await httpRows(plan, `${fn.url}/function/bench`)));
  });
  await inScope(async (scope) => {
    const nats = await startNats(scope);
    // noAsyncTraces as src/nats/connection.ts sets it: nats.js measured as asyncfn runs it.
    const nc = await connect({ servers: nats.url, name: 'asyncfn-bench-pieces', noAsyncTraces: true });
    scope.defer(() => nc.close());
    const confirmer = createConfirmer(nc);
    scope.defer(() => confirmer.close());
    const clients: Clients = { nc, js: jetstream(nc), confirmer };
    progress('pieces', 'publish: nats.js vs confirmer');
    rows.push(...(await publishRows(plan, clients)));
    progress('pieces', 'ackAck: nats.js vs confirmer');
    rows.push(...(await ackRows(plan, clients)));
    progress('pieces', 'rate limit: acquire vs kv.put');
    rows.push(...(await rateLimitRows(plan, nc)));
  });
  return rows;
}
