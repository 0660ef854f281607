import { EventEmitter } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { CALLBACK_STREAM, DEAD_LETTER_STREAM } from '../../src/queue/topology.js';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import { startStack } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { eventually, waitForEvent } from '../helpers/eventually.js';
import { listen, startCallbackSink, type RecordedRequest } from '../helpers/http-servers.js';

/**
 * The callback policy against real servers: a silent receiver does not hold the invocation slot
 * past the direct attempt's budget, permanent statuses are not retried, and callback_max_age ends
 * the retries.
 */

/** A receiver that reads each request and answers none of them until `answer()`; then 200 to all, pending ones too. */
async function startSilentReceiver(t: Test) {
  const events = new EventEmitter();
  const received: RecordedRequest[] = [];
  const pending: ServerResponse[] = [];
  let answering = false;
  let answered = 0;
  const server = createServer(async (raw, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of raw) chunks.push(chunk as Buffer);
    received.push({ method: raw.method ?? '', url: raw.url ?? '', headers: raw.headers, body: Buffer.concat(chunks) });
    if (answering) res.writeHead(200).end(() => (answered += 1));
    else pending.push(res);
    events.emit('change');
  });
  const base = await listen(t, server);
  return {
    url: `${base}/hook`,
    received,
    /** Answers sent to a client still listening. */
    get answered() {
      return answered;
    },
    waitFor: (n: number, timeoutMs = 30_000) => waitForEvent(events, 'change', () => received.length >= n, `${n} requests at the silent receiver`, timeoutMs),
    answer: () => {
      answering = true;
      // Requests whose client gave up have a destroyed socket; only a waiting client gets the 200.
      for (const res of pending.splice(0)) if (!res.socket?.destroyed) res.writeHead(200).end(() => (answered += 1));
    },
  };
}

async function deadLetters(natsUrl: string): Promise<Array<Record<string, unknown>>> {
  const out: string[] = [];
  await runDlqCommand(['list', '--json'], { natsUrl, out: (l) => out.push(l), err: () => undefined });
  return out.map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function streamMessages(t: Test, natsUrl: string) {
  const nc = await connect({ servers: natsUrl });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  return async (stream: string) => (await jsm.streams.info(stream)).state.messages;
}

t.test('max_inflight 1: a receiver that never answers holds the slot only for the direct attempt; the retrier delivers later', async (t) => {
  // callback_timeout 60 s: were the slot held for it, B could not finish within the 15 s bound below.
  const { nats, fn, sink, gateway } = await startStack(t, {
    config: { worker: { maxInflight: 1 }, callback: { timeoutMs: 60_000, firstAttemptTimeoutMs: 1_000, initialWaitMs: 100, maxWaitMs: 200 } },
  });
  const silent = await startSilentReceiver(t);
  const messages = await streamMessages(t, nats.url);

  const [a] = await enqueueMany(gateway.url, 'work', 1, silent.url, () => 'result of A');
  await silent.waitFor(1);
  const [b] = await enqueueMany(gateway.url, 'work', 1, sink.url, () => 'result of B');
  const callbackB = await sink.waitForCallId(b!, 15_000);
  t.equal(callbackB.body.toString(), 'result of B', "B's function ran and its callback arrived");
  t.equal(silent.answered, 0, "while A's receiver still answers nothing");
  t.same(
    fn.requests.map((r) => r.body.toString()),
    ['result of A', 'result of B'],
    'one slot: A ran, then B',
  );

  // The durable retrier's attempt (full callback_timeout) is waiting at the receiver too.
  await silent.waitFor(2);
  t.equal(silent.answered, 0);
  silent.answer();
  await eventually(async () => (await messages(CALLBACK_STREAM)) === 0, "A's callback delivered and acked by the retrier", 20_000);
  t.equal(silent.answered, 1, 'the waiting durable attempt got the 200');
  t.equal(await messages(DEAD_LETTER_STREAM), 0, 'no dead letter');
  for (const [i, req] of silent.received.entries()) {
    t.equal(req.headers['x-call-id'], a, `attempt ${i + 1} carries A's call id`);
    t.equal(req.body.toString(), 'result of A', "exactly A's result");
    t.equal(req.headers['x-retry'], '0', 'X-Retry counts function retries: none');
  }
  t.equal(fn.requests.filter((r) => r.body.toString() === 'result of A').length, 1, "A's function ran exactly once");
});

t.test('a receiver answering 404 is asked once, then the callback is a dead letter; a replay posts it again', async (t) => {
  const { nats, fn, gateway } = await startStack(t, { config: { callback: { initialWaitMs: 20, maxWaitMs: 50 } } });
  const receiver = await startCallbackSink(t, (n) => (n === 1 ? 404 : 200));
  const messages = await streamMessages(t, nats.url);

  const [callId] = await enqueueMany(gateway.url, 'work', 1, `${receiver.url}/hook`, () => 'kept result');
  let letters: Array<Record<string, unknown>> = [];
  await eventually(async () => (letters = await deadLetters(nats.url)).length > 0, 'the callback dead letter');
  t.match(letters, [{ callId, reason: 'callbackFailed', attempts: 1, error: 'receiver answered 404 (permanent)' }]);
  t.equal(receiver.received.length, 1, 'one attempt: the direct one');
  t.equal(await messages(CALLBACK_STREAM), 0, 'nothing left to retry');

  // The receiver is fixed: a replay posts the result again (the 404 of the direct attempt is not carried over).
  const out: string[] = [];
  const code = await runDlqCommand(['replay', String(letters[0]!.seq), '--yes'], { natsUrl: nats.url, out: (l) => out.push(l), err: (l) => out.push(l) });
  t.equal(code, 0, out.join('\n'));
  const [, replayed] = await receiver.waitFor(2);
  t.equal(replayed!.headers['x-call-id'], callId);
  t.equal(replayed!.body.toString(), 'kept result');
  t.equal(fn.requests.length, 1, 'the function never ran again');
});

t.test('callback_max_age: a receiver failing with 503 is retried until the age, then dead-lettered', async (t) => {
  const { nats, fn, gateway } = await startStack(t, {
    config: { callback: { maxAttempts: 1_000, initialWaitMs: 200, maxWaitMs: 400, maxAgeMs: 1_500 } },
  });
  const receiver = await startCallbackSink(t, 503);
  const messages = await streamMessages(t, nats.url);

  const [callId] = await enqueueMany(gateway.url, 'work', 1, `${receiver.url}/hook`);
  let letters: Array<Record<string, unknown>> = [];
  await eventually(async () => (letters = await deadLetters(nats.url)).length > 0, 'the callback dead letter', 20_000);
  const [letter] = letters;
  t.match(letter, {
    callId,
    reason: 'callbackFailed',
    error: /^gave up after \d+(\.\d)?s \(callback_max_age 1\.5s\); last error: callback failed: receiver answered 503$/,
  });
  const age = Number(/after (\d+(?:\.\d)?)s/.exec(String(letter!.error))![1]);
  t.ok(age >= 1.5, `gave up at ${age}s, not before the max age`);
  // The direct attempt, then durable ones until the age: at least one of those, however slow the box;
  // and at most one at once plus one per back-off (400 ms) within 1.5 s, were every nak delay kept.
  const attempts = Number(letter!.attempts);
  t.ok(attempts >= 2 && attempts <= 7, `${attempts} attempts: the back-off was kept, and the age ended them long before callback_max_attempts`);
  t.equal(receiver.received.length, letter!.attempts, 'every attempt reached the receiver');
  t.equal(await messages(CALLBACK_STREAM), 0);
  t.equal(fn.requests.length, 1);
});

t.test('callback_initial_wait: after a direct attempt answered 503 the receiver is asked again after initial_wait, then doubling', async (t) => {
  const initialWaitMs = 1_000;
  const { fn, gateway } = await startStack(t, { config: { callback: { maxAttempts: 10, initialWaitMs, maxWaitMs: 60_000 } } });
  // Answers 503 four times, then 200; each request's arrival on this process's monotonic clock.
  const events = new EventEmitter();
  const arrivals: number[] = [];
  const server = createServer((req, res) => {
    arrivals.push(performance.now());
    req.resume();
    req.on('end', () => {
      res.writeHead(arrivals.length <= 4 ? 503 : 200).end();
      events.emit('change');
    });
  });
  const receiver = await listen(t, server);

  await enqueueMany(gateway.url, 'work', 1, `${receiver}/hook`);
  await waitForEvent(events, 'change', () => arrivals.length >= 5, 'five callback attempts', 60_000);
  const gaps = arrivals.slice(1).map((at, i) => at - arrivals[i]!);
  const planned = [1, 2, 4, 8].map((n) => n * initialWaitMs);
  // Never before its back-off (JetStream holds the nak'd message that long), and before the next
  // step's (a doubled wait, as an off-by-one in the schedule would give).
  for (const [i, gap] of gaps.entries()) {
    t.ok(gap >= planned[i]! && gap < 2 * planned[i]!, `gap ${i + 1}: ${Math.round(gap)} ms, planned ${planned[i]} ms`);
  }
  t.equal(fn.requests.length, 1, 'the function ran once');
});
