import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { CallbackRequest } from '../../../actors/invocation.types.js';
import { CallbackFailedError, deliverCallback } from '../../../src/callback/deliver.js';
import { createHttpClient } from '../../../src/http/client.js';
import { testInvocation } from '../../helpers/invocations.js';

t.test('a receiver that never answers: the attempt ends at its budget with its own words and no status', async (t) => {
  let requests = 0;
  // Reads the request, never answers.
  const server = createServer((req) => {
    requests += 1;
    req.resume();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const dispatcher = createHttpClient({ connectionsPerOrigin: 1 });
  t.teardown(() => dispatcher.destroy());
  const deliver = deliverCallback({ dispatcher, timeoutMs: 200, version: '0.0.0' });
  const req: CallbackRequest = {
    invocation: testInvocation({ callbackUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` }),
    outcome: { status: 200, body: new Uint8Array([1]), startedAtMs: 0, durationMs: 1 },
    attempt: 1,
    maxAttempts: 3,
  };
  const error = await deliver(req).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.type(error, CallbackFailedError);
  t.equal((error as CallbackFailedError).message, 'callback failed: no answer within 200 ms');
  t.equal((error as CallbackFailedError).status, undefined);
  t.equal(requests, 1, 'the request reached the receiver: at-least-once, it may act on it');
});
