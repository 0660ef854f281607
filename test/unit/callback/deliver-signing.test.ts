import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import t from 'tap';
import type { CallbackRequest } from '../../../actors/invocation.types.js';
import { deliverCallback } from '../../../src/callback/deliver.js';
import { parseSigningSecret } from '../../../src/callback/signing.js';
import { createHttpClient } from '../../../src/http/client.js';
import { startCallbackSink } from '../../helpers/http-servers.js';
import { testInvocation } from '../../helpers/invocations.js';
import { loadVerifySnippet } from '../../helpers/readme-snippet.js';

const { verifyCallback } = await loadVerifySnippet();

function callbackFor(url: string, body: Uint8Array, callId = 'call-42'): CallbackRequest {
  return {
    invocation: testInvocation({ callId, functionName: 'work', callbackUrl: url }),
    outcome: { status: 200, contentType: 'application/octet-stream', body, startedAtMs: 1_700_000_000_000, durationMs: 5 },
    attempt: 1,
    maxAttempts: 1,
  };
}

t.test('each attempt is signed with the clock of that attempt, over the bytes sent', async (t) => {
  const sink = await startCallbackSink(t);
  const dispatcher = createHttpClient({ connectionsPerOrigin: 1 });
  t.teardown(() => dispatcher.destroy());
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const clock = [1_767_225_600_999, 1_767_225_661_000];
  const deliver = deliverCallback({ dispatcher, timeoutMs: 5_000, version: '0.0.0', signing: { secrets: [parseSigningSecret(secret)], nowMs: () => clock.shift()! } });
  const body = Buffer.concat([Buffer.from([0xff, 0x00, 0xc3]), randomBytes(1000)]);

  await deliver(callbackFor(sink.url, body));
  await deliver(callbackFor(sink.url, body));
  const [first, second] = sink.received;
  t.ok(first!.body.equals(body) && second!.body.equals(body), 'the body arrives intact');
  t.equal(first!.headers['webhook-id'], 'call-42', 'webhook-id is the call id');
  t.equal(second!.headers['webhook-id'], 'call-42', 'and stays across attempts');
  t.equal(first!.headers['webhook-timestamp'], '1767225600', 'unix seconds, rounded down');
  t.equal(second!.headers['webhook-timestamp'], '1767225661', 'the retry carries its own time');
  t.not(first!.headers['webhook-signature'], second!.headers['webhook-signature'], 'and its own signature');
  t.equal(verifyCallback(first!.body, first!.headers, secret, 1_767_225_600), true);
  t.equal(verifyCallback(second!.body, second!.headers, secret, 1_767_225_661), true);
  t.equal(verifyCallback(second!.body, second!.headers, secret, 1_767_225_600 + 301 + 61), false, 'stale after 5 minutes');
});

t.test('the real clock by default; the standardwebhooks library verifies a JSON callback', async (t) => {
  const sink = await startCallbackSink(t);
  const dispatcher = createHttpClient({ connectionsPerOrigin: 1 });
  t.teardown(() => dispatcher.destroy());
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const deliver = deliverCallback({ dispatcher, timeoutMs: 5_000, version: '0.0.0', signing: { secrets: [parseSigningSecret(secret)] } });
  await deliver(callbackFor(sink.url, Buffer.from('{"done":true}'), 'order.7.retry'));
  const received = sink.received[0]!;
  t.same(new Webhook(secret).verify(received.body, received.headers as Record<string, string>), { done: true });
  t.equal(received.headers['webhook-id'], 'order~7~retry', 'dots in a call id become ~');
  t.equal(received.headers['x-call-id'], 'order.7.retry', 'X-Call-Id is unchanged');
});

t.test('without signing no webhook-* header is sent', async (t) => {
  const sink = await startCallbackSink(t);
  const dispatcher = createHttpClient({ connectionsPerOrigin: 1 });
  t.teardown(() => dispatcher.destroy());
  await deliverCallback({ dispatcher, timeoutMs: 5_000, version: '0.0.0' })(callbackFor(sink.url, Buffer.from('x')));
  t.same(
    Object.keys(sink.received[0]!.headers).filter((h) => h.startsWith('webhook-')),
    [],
  );
});
