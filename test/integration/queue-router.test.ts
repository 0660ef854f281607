import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import t from 'tap';
import { testConfig } from '../../src/config/index.js';
import { BadAnnotationError, createQueueRouter } from '../../src/gateway/queue-router.js';
import type { ResolvedFunction } from '../../src/functions/index.js';
import { startNatsServer } from '../helpers/nats-server.js';

const silent = pino({ enabled: false });

function fn(annotations: Record<string, string> = {}): ResolvedFunction {
  return { name: 'echo', namespace: 'openfaas-fn', url: 'http://127.0.0.1:9/', annotations };
}

t.test('routeNow answers only once the queue is provisioned, then as route does; a bad annotation throws', async (t) => {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const router = createQueueRouter(testConfig(), await jetstreamManager(nc), silent);

  t.equal(router.routeNow(fn(), 1_000), undefined, 'not provisioned yet');
  const routed = await router.route(fn(), 1_000);
  t.same(router.routeNow(fn(), 1_000), routed, 'provisioned: the same route, without waiting');
  t.same(router.routeNow(fn(), 2_000, 'tenant-7'), await router.route(fn(), 2_000, 'tenant-7'), 'a concurrency key too');
  t.throws(() => router.routeNow(fn({ 'com.openfaas.queue': 'Bad!' }), 1_000), BadAnnotationError);
  await t.rejects(router.route(fn({ 'com.openfaas.queue': 'Bad!' }), 1_000), BadAnnotationError);
  // A name overlapping asyncfn's own subjects (asyncfn.>) or streams is as bad: a 500, not a 503 to retry.
  await t.rejects(router.route(fn({ 'com.openfaas.queue': 'asyncfn' }), 1_000), BadAnnotationError);
  await t.rejects(router.route(fn({ 'com.openfaas.queue': 'KV_asyncfn_invocations' }), 1_000), BadAnnotationError);
});
