import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t from 'tap';
import { request } from 'undici';
import { RECORDS_BUCKET } from '../../src/queue/topology.js';
import { configFor, resolverFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { eventually } from '../helpers/eventually.js';
import { startCallbackSink, startFunctionServer, slowHandler, type CallbackSink } from '../helpers/http-servers.js';
import { startNatsCluster } from '../helpers/nats-cluster.js';

const STREAM = 'faas-request';
const DURABLE = 'faas-workers';
/** Invocations sent per second, steadily, whatever the answers. */
const RATE = 20;
/** The stream leader's node is killed once this many requests have been sent (2 s in). */
const KILL_AT = 40;
/** The load goes on at least this long after the killed node is back, to show the cluster whole again. */
const AFTER_RESTART_MS = 2_000;
/** At most 20 s of load, whatever happens: nats-server 2.9 elects a new stream leader 4–9 s after losing one. */
const MAX_REQUESTS = 20 * RATE;

t.test('3-node cluster, R3 stream: kill -9 of the stream leader under load loses no accepted invocation', async (t) => {
  const cluster = await startNatsCluster(t);
  const fn = await startFunctionServer(t, slowHandler(100));
  const sink = await startCallbackSink(t);
  const resolver = resolverFor({ work: fn.url });
  // stream_replication 3 covers the request stream and its consumer, the status and cancellation
  // buckets and the dead-letter and callback streams. A short ack_wait brings back quickly the
  // messages whose ack was lost with the leader. Every component gets all three URLs as seeds.
  const config = configFor(cluster.url, {
    queue: { replicas: 3 },
    worker: { maxInflight: 8, ackWaitMs: 3_000 },
    gateway: { publishTimeoutMs: 3_000 },
  });
  // One after the other: the first provisions the R3 streams, the others find them.
  const gateways = [await startTestGateway(t, config, resolver), await startTestGateway(t, config, resolver)];
  await startTestWorker(t, config, resolver);
  await startTestWorker(t, config, resolver);

  const nc = await connect({ servers: cluster.url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc, { timeout: 1_000 });
  const before = await jsm.streams.info(STREAM);
  t.equal(before.config.num_replicas, 3, 'the request stream has 3 replicas');
  t.equal((before.cluster?.replicas ?? []).length, 2, 'and two followers besides its leader');

  const start = performance.now();
  const sinceStart = (): number => performance.now() - start;
  const accepted = new Map<string, number>(); // call id → when its 202 came, ms since start
  const refused = new Map<string, number>(); // call id → when its 503 came
  const other: string[] = [];
  const send = async (i: number): Promise<void> => {
    const callId = randomUUID();
    try {
      const res = await request(`${gateways[i % 2]!.url}/async-function/work`, {
        method: 'POST',
        body: `job-${i}`,
        headers: { 'x-call-id': callId, 'x-callback-url': sink.url },
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      await res.body.dump();
      if (res.statusCode === 202 && res.headers['x-call-id'] === callId) accepted.set(callId, sinceStart());
      else if (res.statusCode === 503) refused.set(callId, sinceStart());
      else other.push(`${i}: ${res.statusCode} ${String(res.headers['x-call-id'])}`);
    } catch (err) {
      other.push(`${i}: ${String(err)}`);
    }
  };

  // The fault, step by step, each step awaiting the event before it.
  const fault = { victim: '', consumerLeader: '', recordsLeader: '', newLeader: '', killedMs: 0, electedMs: 0, restartedMs: 0 };
  const injectFault = async (): Promise<void> => {
    fault.victim = await leaderOf(jsm);
    fault.consumerLeader = (await jsm.consumers.info(STREAM, DURABLE)).cluster?.leader ?? '?';
    fault.recordsLeader = (await jsm.streams.info(`KV_${RECORDS_BUCKET}`)).cluster?.leader ?? '?';
    await cluster.node(fault.victim).kill9();
    fault.killedMs = sinceStart();
    fault.newLeader = await leaderOf(jsm, fault.victim);
    fault.electedMs = sinceStart();
    await cluster.node(fault.victim).restart();
    fault.restartedMs = sinceStart();
  };

  let faulting: Promise<void> | undefined;
  const sent: Promise<void>[] = [];
  for (let i = 0; i < MAX_REQUESTS; i++) {
    if (i === KILL_AT) {
      faulting = injectFault();
      // Awaited once the load is over; until then a failure must not count as unhandled.
      faulting.catch(() => undefined);
    }
    // Stops once the cluster is whole again and the gateways have accepted since the kill (a new
    // leader can take a moment longer to reach the gateways than AFTER_RESTART_MS); at most MAX_REQUESTS.
    const acceptingAgain = [...accepted.values()].some((ms) => ms > fault.killedMs);
    if (fault.restartedMs > 0 && sinceStart() > fault.restartedMs + AFTER_RESTART_MS && acceptingAgain) break;
    sent.push(send(i));
    // Pacing the load generator: one request every 1000 / RATE ms, whatever the answers take.
    await delay(Math.max(0, ((i + 1) * 1000) / RATE - sinceStart()));
  }
  await Promise.all(sent);
  await faulting;
  const s = (ms: number): string => (ms / 1000).toFixed(1);
  t.comment(
    `killed ${fault.victim} (stream leader; the consumer's was ${fault.consumerLeader}, the records bucket's ${fault.recordsLeader}) at ${s(fault.killedMs)} s, ` +
      `${fault.newLeader} stream leader by ${s(fault.electedMs)} s, ${fault.victim} restarted at ${s(fault.restartedMs)} s, ` +
      `load stopped at ${s(sinceStart())} s`,
  );
  const refusedTimes = [...refused.values()];
  const acceptedAfterFailover = [...accepted.values()].filter((ms) => ms > fault.killedMs).length;
  t.comment(
    `${sent.length} sent: ${accepted.size} accepted (${acceptedAfterFailover} after the kill), ${refused.size} refused` +
      (refusedTimes.length > 0 ? ` (503s answered from ${s(Math.min(...refusedTimes))} to ${s(Math.max(...refusedTimes))} s)` : ''),
  );
  await cluster.waitForJetStream();

  const missing = await waitForCallbacks(sink, accepted.keys(), 40_000);
  const completedIds = sink.received.map((r) => String(r.headers['x-call-id']));
  const completed = new Set(completedIds.filter((id) => accepted.has(id)));
  const duplicates = completedIds.length - new Set(completedIds).size;
  const refusedButRan = new Set(completedIds.filter((id) => refused.has(id))).size;
  t.comment(
    `cluster fault (kill -9 of the stream leader): accepted ${accepted.size}, refused ${refused.size} (503; ${refusedButRan} of them ran anyway), ` +
      `completed ${completed.size}, lost ${missing.length}, duplicates ${duplicates}, function calls ${fn.requests.length}, all done at ${s(sinceStart())} s`,
  );

  // Status records are written without waiting for JetStream's answer: one written while the
  // records bucket has no leader is dropped. Counted and printed, not asserted.
  const records = new Map<string, number>();
  for (const id of completed) {
    const res = await request(`${gateways[0]!.url}/async-function/${id}`);
    const text = await res.body.text();
    const state = res.statusCode === 200 ? (JSON.parse(text) as { state: string }).state : `HTTP ${res.statusCode}`;
    records.set(state, (records.get(state) ?? 0) + 1);
  }
  t.comment(`status records of the completed invocations: ${[...records].map(([state, n]) => `${n} ${state}`).join(', ')}`);

  t.same(other, [], 'every request was answered 202 or 503');
  t.equal(accepted.size + refused.size, sent.length, 'every request counted');
  t.ok(acceptedAfterFailover > 0, 'the gateways accept again once a new leader is elected');
  t.same(missing, [], 'lost: no accepted invocation went without its callback');
  t.equal(completed.size, accepted.size, 'every accepted call id completed');
  t.notOk(
    completedIds.some((id) => !accepted.has(id) && !refused.has(id)),
    'no callback for a call id never sent',
  );
  await eventually(
    async () => ((await jsm.streams.info(STREAM)).cluster?.replicas ?? []).filter((r) => r.current).length === 2,
    'both followers of the stream to be current again',
  );
  t.pass(`after the restart ${fault.victim} caught up: the stream has two current followers again`);
});

/** The stream leader's server_name, asked until JetStream names one other than `not` (it may be electing). */
async function leaderOf(jsm: JetStreamManager, not?: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const leader = await jsm.streams
      .info(STREAM)
      .then((info) => info.cluster?.leader)
      .catch(() => undefined);
    if (leader && leader !== not) return leader;
    await delay(100);
  }
  throw new Error(`stream ${STREAM} has no leader${not ? ` other than ${not}` : ''} after 20 s`);
}

/** Waits (bounded in time) until a callback arrived for every id; returns those still missing. */
async function waitForCallbacks(sink: CallbackSink, ids: Iterable<string>, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  const wanted = [...ids];
  for (const id of wanted) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sink.waitForCallId(id, left).catch(() => undefined);
  }
  const done = new Set(sink.received.map((r) => String(r.headers['x-call-id'])));
  return wanted.filter((id) => !done.has(id));
}
