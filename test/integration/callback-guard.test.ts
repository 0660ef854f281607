import { jetstream, type Consumer } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { request } from 'undici';
import { decodeDeadLetter, type DeadLetter } from '../../src/queue/dead-letter.js';
import { configFor, resolverFor, startStack, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { scriptedHandler, startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { DEAD_LETTER_STREAM } from '../../src/queue/topology.js';

/** POSTs one async invocation with X-Callback-Url; the status, the error code and the one-line reason. */
async function submit(gatewayUrl: string, callbackUrl: string): Promise<{ status: number; code: unknown; reason: string }> {
  const res = await request(`${gatewayUrl}/async-function/work`, { method: 'POST', body: 'x', headers: { 'x-callback-url': callbackUrl } });
  return { status: res.statusCode, code: res.headers['x-asyncfn-error'], reason: await res.body.text() };
}

/** An ordered consumer on the dead-letter stream (which the worker creates), read one letter at a time. */
async function deadLetterReader(t: Test, natsUrl: string): Promise<() => Promise<DeadLetter>> {
  const nc = await connect({ servers: natsUrl });
  t.teardown(() => nc.close());
  const consumer: Consumer = await jetstream(nc).consumers.get(DEAD_LETTER_STREAM);
  return async () => {
    // next() waits for the message to be stored, up to `expires`; null means none came.
    const msg = await consumer.next({ expires: 15_000 });
    if (!msg) throw new Error('no dead letter within 15 s');
    return decodeDeadLetter({ seq: msg.seq, header: msg.headers, data: msg.data });
  };
}

t.test('refused callback targets are answered 400 at submit, with the reason, and never queued', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const sink = await startCallbackSink(t);
  const port = new URL(sink.url).port;
  const resolver = resolverFor({ work: fn.url });
  const strict = await startTestGateway(t, configFor(nats.url, { security: { callbackAllow: [] } }), resolver);

  const refused: Array<[string, RegExp]> = [
    [sink.url, /^callback target refused: 127\.0\.0\.1 is a loopback address \(not in callback_allow\)\n$/],
    ['http://10.0.0.5:8080/hook', /10\.0\.0\.5 is a private address/],
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
    [`http://[::1]:${port}/`, /::1 is a loopback address/],
    [`http://[::ffff:127.0.0.1]:${port}/`, /::ffff:7f00:1 is a loopback address/],
    [`http://2130706433:${port}/`, /127\.0\.0\.1 is a loopback address/],
    [`http://0177.0.0.1:${port}/`, /127\.0\.0\.1 is a loopback address/],
    ['http://0.0.0.0/', /0\.0\.0\.0 is an unspecified/],
    ['https://[fd00:ec2::254]/', /fd00:ec2::254 is a private address/],
    [`http://localhost:${port}/`, /localhost resolves to (127\.0\.0\.1|::1), a loopback address/],
  ];
  for (const [url, reason] of refused) {
    const answer = await submit(strict.url, url);
    t.equal(answer.status, 400, `${url} → 400`);
    t.equal(answer.code, 'ASYNCFN_ERR_CALLBACK_REFUSED');
    t.match(answer.reason, reason);
  }

  // The allowlist lets a loopback name through, and the callback is delivered to it. Every refused
  // submission above would have been run first (one slot, FIFO) had any of them been queued.
  const config = configFor(nats.url, { security: { callbackAllow: ['localhost'] }, worker: { maxInflight: 1 } });
  const allowing = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const [callId] = await enqueueMany(allowing.url, 'work', 1, `http://localhost:${port}/hook`, () => 'to localhost');
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.url, '/hook');
  t.equal(callback.body.toString(), 'to localhost');
  t.equal(fn.requests.length, 1, 'none of the refused invocations was queued');
  t.equal(sink.received.length, 1);
});

t.test('a callback the worker refuses (the gateway allowed it) is dead-lettered at once, not retried', async (t) => {
  const { nats, fn, sink, gateway, resolver } = await startStack(t, { worker: false });
  const port = new URL(sink.url).port;
  // The gateway allows loopback (the test default); this worker does not. Function calls to the
  // loopback function server are not guarded. A long callback back-off shows nothing waits for it.
  await startTestWorker(t, configFor(nats.url, { security: { callbackAllow: [] }, callback: { maxAttempts: 10, initialWaitMs: 600_000, maxWaitMs: 600_000 } }), resolver);
  const nextDeadLetter = await deadLetterReader(t, nats.url);

  const [literal] = await enqueueMany(gateway.url, 'work', 1, `${sink.url}/hook`);
  const first = await nextDeadLetter();
  t.match(first, {
    reason: 'callbackFailed',
    queue: 'faas-request',
    attempts: 2,
    error: 'callback target refused: 127.0.0.1 is a loopback address (not in callback_allow)',
    invocation: { callId: literal, callbackUrl: `${sink.url}/hook` },
  });

  // A name is refused by the connect-time lookup: the addresses it resolves to are what is checked.
  const [named] = await enqueueMany(gateway.url, 'work', 1, `http://localhost:${port}/hook`);
  const second = await nextDeadLetter();
  t.match(second, {
    reason: 'callbackFailed',
    attempts: 2,
    error: /^callback target refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address \(not in callback_allow\)$/,
    invocation: { callId: named },
  });
  t.equal(sink.received.length, 0, 'nothing reached the receiver');
  t.equal(fn.requests.length, 2, 'the functions themselves ran, once each');
});

t.test('a receiver answering 302 is a failed callback: the redirect is not followed', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const internal = await startCallbackSink(t);
  const redirecting = await startFunctionServer(
    t,
    scriptedHandler(() => ({ status: 302, headers: { location: `${internal.url}/secret` } })),
  );
  const resolver = resolverFor({ work: fn.url });
  // Loopback is allowed (the test default), so only the redirect rule stops the hop to `internal`.
  const config = configFor(nats.url, { callback: { maxAttempts: 2, initialWaitMs: 20, maxWaitMs: 20 } });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const nextDeadLetter = await deadLetterReader(t, nats.url);

  const [callId] = await enqueueMany(gateway.url, 'work', 1, `${redirecting.url}/hook`);
  const letter = await nextDeadLetter();
  t.match(letter, { reason: 'callbackFailed', attempts: 2, invocation: { callId } });
  t.match(letter.error, /receiver answered 302 \(redirects are not followed\)/);
  t.equal(redirecting.requests.length, 2, 'both attempts went to the receiver itself');
  t.equal(internal.received.length, 0, 'the redirect target never received a request');
});
