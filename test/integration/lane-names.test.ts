import { request } from 'undici';
import t from 'tap';
import { staticResolver } from '../../src/functions/static-file.js';
import { configFor, startTestGateway, startTestWorker } from '../helpers/asyncfn.js';
import { startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

/**
 * Lanes at the longest names asyncfn accepts: a 64-character queue name, a function name and a
 * namespace of 63 (DNS labels) and a 64-character X-Concurrency-Key, which is kept readable in the
 * lane's subject. Its consumer's name must still be one JetStream takes (255 characters at most).
 */

t.test('an invocation of a key lane with the longest accepted names runs', async (t) => {
  const queue = 'q'.repeat(64);
  const name = 'n'.repeat(63);
  const namespace = 's'.repeat(63);
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t);
  const sink = await startCallbackSink(t);
  const resolver = staticResolver({ [`${name}.${namespace}`]: { url: fn.url, annotations: { 'com.openfaas.queue': queue } } }, 'openfaas-fn');
  const config = configFor(nats.url, { worker: { queues: [{ name: queue, maxInflight: 2, upstreamTimeoutMs: 10_000 }] } });
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const callIds: string[] = [];
  for (const key of ['k'.repeat(64), 'k'.repeat(52)]) {
    const res = await request(`${gateway.url}/async-function/${name}.${namespace}`, {
      method: 'POST',
      body: key,
      headers: { 'x-callback-url': sink.url, 'x-concurrency-key': key },
    });
    await res.body.dump();
    t.equal(res.statusCode, 202, `accepted with a key of ${key.length}`);
    callIds.push(String(res.headers['x-call-id']));
  }
  for (const callId of callIds) {
    const callback = await sink.waitForCallId(callId, 20_000);
    t.equal(callback.headers['x-function-status'], '200');
  }
  t.same(fn.requests.map((r) => r.body.toString().length).sort(), [52, 64], 'each ran once');
});
