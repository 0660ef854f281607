import t from 'tap';
import { backoffBounds, type BackoffMode } from '../../actors/retry.policy.js';
import { DEFAULT_RETRY_POLICY } from '../helpers/machine-fakes.js';
import { runDlqCommand } from '../../src/cli/dlq/index.js';
import { startStack, startTestGateway, startTestWorker, configFor } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { scriptedHandler, startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { staticResolver } from '../../src/functions/static-file.js';

// A redelivery is never early; it can be late by the time a pull, a delivery and a request take.
// The slack bounds that lateness generously for a loaded 2-core CI machine.
const LATE_SLACK_MS = 1_500;

for (const mode of ['exponential', 'full', 'equal'] as const satisfies readonly BackoffMode[]) {
  t.test(`${mode} back-off: a function failing 3 times runs 4 times, gaps within the bounds, X-Retry: 3`, async (t) => {
    const retry = { maxAttempts: 5, initialWaitMs: 200, maxWaitMs: 1_000, mode };
    const { fn, sink, gateway } = await startStack(t, {
      handler: scriptedHandler((n) => ({ status: n <= 3 ? 502 : 200 })),
      config: { retry },
    });
    const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
    const callback = await sink.waitForCallId(callId!);
    t.equal(fn.requests.length, 4, 'ran exactly k+1 times');
    t.equal(callback.headers['x-function-status'], '200');
    t.equal(callback.headers['x-retry'], '3');
    t.equal(callback.headers['x-retry-max'], '4');
    const policy = { ...DEFAULT_RETRY_POLICY, ...retry };
    const gaps: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const gap = fn.requests[attempt]!.atMs! - fn.requests[attempt - 1]!.atMs!;
      gaps.push(Math.round(gap));
      const { minMs, maxMs } = backoffBounds(attempt, policy);
      t.ok(gap >= minMs - 5, `gap after attempt ${attempt} (${Math.round(gap)} ms) is not shorter than ${minMs} ms`);
      t.ok(gap <= maxMs + LATE_SLACK_MS, `gap after attempt ${attempt} (${Math.round(gap)} ms) is at most ${maxMs} ms plus delivery`);
    }
    t.comment(`${mode}: gaps between attempts ${gaps.join(', ')} ms`);
  });
}

t.test('Retry-After in seconds and as an HTTP-date replaces the back-off', async (t) => {
  // An HTTP-date has one-second resolution: three seconds ahead is more than two seconds away.
  const retryAfterDate = () => new Date(Date.now() + 3_000).toUTCString();
  const { fn, sink, gateway } = await startStack(t, {
    handler: scriptedHandler((n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : n === 2 ? { status: 503, headers: { 'retry-after': retryAfterDate() } } : { status: 200 },
    ),
    config: { retry: { maxAttempts: 5, initialWaitMs: 50, maxWaitMs: 5_000 } },
  });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  await sink.waitForCallId(callId!);
  const first = fn.requests[1]!.atMs! - fn.requests[0]!.atMs!;
  const second = fn.requests[2]!.atMs! - fn.requests[1]!.atMs!;
  t.ok(first >= 1_000 - 5, `Retry-After: 1 waited ${Math.round(first)} ms (back-off alone would be 50 ms)`);
  t.ok(second >= 1_900, `Retry-After as a date waited ${Math.round(second)} ms (back-off alone would be 100 ms)`);
  t.equal(fn.requests.length, 3);
});

t.test('a status that is not retryable is not retried', async (t) => {
  const { fn, sink, gateway } = await startStack(t, {
    handler: scriptedHandler(() => ({ status: 400 })),
    config: { retry: { maxAttempts: 5, initialWaitMs: 50 } },
  });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '400');
  t.equal(callback.headers['x-retry'], '0');
  t.equal(fn.requests.length, 1);
});

t.test("annotations override the queue's policy; retries exhausted go to the dead letters", async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(
    t,
    scriptedHandler(() => ({ status: 418 })),
  );
  const sink = await startCallbackSink(t);
  const resolver = staticResolver(
    {
      teapot: {
        url: fn.url,
        annotations: { 'com.openfaas.retry.attempts': '3', 'com.openfaas.retry.codes': '418', 'com.openfaas.retry.min_wait': '50ms' },
      },
    },
    'openfaas-fn',
  );
  // The queue's policy would make one attempt and never retry a 418.
  const config = configFor(nats.url, { retry: { maxAttempts: 1, retryStatuses: [502], initialWaitMs: 5_000, maxWaitMs: 10_000 } });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const [callId] = await enqueueMany(gateway.url, 'teapot', 1, sink.url);
  const callback = await sink.waitForCallId(callId!);
  t.equal(fn.requests.length, 3, 'com.openfaas.retry.attempts=3 and codes=418 applied');
  t.equal(callback.headers['x-retry'], '2');
  t.equal(callback.headers['x-function-status'], '418');

  const out: string[] = [];
  t.equal(await runDlqCommand(['list', '--json'], { natsUrl: nats.url, out: (l) => out.push(l), err: () => undefined }), 0);
  const letters = out.map((line) => JSON.parse(line) as { callId: string; reason: string; attempts: number; status: number });
  t.match(letters, [{ callId, reason: 'retriesExhausted', attempts: 3, status: 418 }], 'the dead letter says why');
});

t.test('dlq replay runs the invocation again with the same call id', async (t) => {
  let healthy = false;
  const { nats, fn, sink, gateway } = await startStack(t, {
    handler: (_req, res) => {
      res.writeHead(healthy ? 200 : 500).end(healthy ? 'ok' : 'broken');
    },
    config: { retry: { maxAttempts: 1 } },
  });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  await sink.waitForCallId(callId!);
  t.equal(sink.received[0]?.headers['x-function-status'], '500');

  healthy = true;
  const err: string[] = [];
  const out: string[] = [];
  t.equal(await runDlqCommand(['replay', '--yes'], { natsUrl: nats.url, out: (l) => out.push(l), err: (l) => err.push(l) }), 0, err.join('\n'));
  await sink.waitFor(2);
  t.equal(sink.received[1]?.headers['x-call-id'], callId, 'same call id');
  t.equal(sink.received[1]?.headers['x-function-status'], '200');
  t.equal(fn.requests.length, 2);
  t.equal(fn.requests[1]?.headers['x-call-id'], callId);
});
