import fastify from 'fastify';
import { pino } from 'pino';
import t from 'tap';
import type { DeadLetterBrowser } from '../../../src/gateway/dead-letters.js';
import { installErrorHandlers } from '../../../src/gateway/http-errors.js';
import { deadLetterRoutes } from '../../../src/gateway/routes/dead-letters.js';

/** A browser whose every call fails as JetStream does when NATS is gone. */
const failing: DeadLetterBrowser = {
  list: () => Promise.reject(new Error('connection closed')),
  get: () => Promise.reject(new Error('connection closed')),
  purge: () => Promise.reject(new Error('connection closed')),
};

async function app(ready: boolean) {
  const server = fastify();
  installErrorHandlers(server, pino({ level: 'silent' }), 1024);
  await server.register(deadLetterRoutes, { deadLetters: failing, isReady: () => ready, now: Date.now });
  return server;
}

for (const ready of [false, true]) {
  t.test(`NATS ${ready ? 'failing mid-request' : 'disconnected'}: every dead-letter route answers 503 with Retry-After`, async (t) => {
    const server = await app(ready);
    t.teardown(() => server.close());
    for (const [method, url] of [
      ['GET', '/system/dead-letters'],
      ['GET', '/system/dead-letters/7'],
      ['DELETE', '/system/dead-letters?all=true'],
    ] as const) {
      const res = await server.inject({ method, url });
      t.equal(res.statusCode, 503, `${method} ${url}`);
      t.equal(res.headers['x-asyncfn-error'], 'ASYNCFN_ERR_QUEUE_UNAVAILABLE');
      t.equal(res.headers['retry-after'], '1');
    }
  });
}
