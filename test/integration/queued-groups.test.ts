import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import t from 'tap';
import { request } from 'undici';
import { RECORDS_BUCKET } from '../../src/queue/topology.js';
import { groupKeyOf } from '../../src/status/queued-groups.js';
import type { InvocationRecord } from '../../src/status/records.js';
import { configFor, resolverFor, startTestGateway } from '../helpers/asyncfn.js';
import { startCallbackSink } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

/**
 * The default path's `queued` records are one group per event-loop turn (src/status/queued-groups.ts):
 * no record per invocation, each invocation still readable at once, the group itself never served,
 * and its call ids still taken for chaining. A gateway and nats-server, no worker: every
 * invocation stays queued.
 */

const INVOCATIONS = 200;

async function status(url: string): Promise<{ status: number; record?: InvocationRecord }> {
  const res = await request(url);
  if (res.statusCode !== 200) {
    await res.body.dump();
    return { status: res.statusCode };
  }
  return { status: 200, record: (await res.body.json()) as InvocationRecord };
}

t.test('a burst of 202s: only group records are written, each call id reads queued at once, the group is no record', async (t) => {
  const nats = await startNatsServer(t);
  const sink = await startCallbackSink(t);
  const config = configFor(nats.url);
  const gateway = await startTestGateway(t, config, resolverFor({ work: 'http://127.0.0.1:9' }));

  const ids = await Promise.all(
    Array.from({ length: INVOCATIONS }, async (_, i) => {
      const res = await request(`${gateway.url}/async-function/work`, { method: 'POST', body: `n${i}`, headers: { 'x-callback-url': sink.url } });
      await res.body.dump();
      t.equal(res.statusCode, 202);
      return String(res.headers['x-call-id']);
    }),
  );
  const read = await Promise.all(ids.map((id) => status(`${gateway.url}/async-function/${id}`)));
  t.same(
    read.filter((r) => r.record?.state !== 'queued'),
    [],
    'every call id reads queued right after its 202',
  );
  t.match(read[0]!.record, { function: 'work', namespace: 'openfaas-fn', queue: 'faas-request', attempts: 0 });

  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await new Kvm(nc).open(RECORDS_BUCKET);
  const values = (await kv.status()).values;
  const groups = new Set(ids.map(groupKeyOf));
  // How many share a turn depends on how the requests arrive (the unit test pins it down); what
  // holds every time is that the gateway wrote no record per invocation, only its groups.
  t.equal(values, groups.size, `one record per group, none per invocation: ${values} for ${INVOCATIONS} invocations`);

  const [id] = ids as [string];
  const groupKey = groupKeyOf(id)!;
  t.equal((await status(`${gateway.url}/async-function/${encodeURIComponent(groupKey)}`)).status, 404, 'the group is not served');
  const guessed = `${id.slice(0, 19)}8000-000000000000`;
  t.equal((await status(`${gateway.url}/async-function/${guessed}`)).status, 404, 'nor a guessed member of it');
});

t.test('a grouped call id is taken: sent back as X-Call-Id it chains; DELETE cancels it while queued', async (t) => {
  const nats = await startNatsServer(t);
  const config = configFor(nats.url);
  const gateway = await startTestGateway(t, config, resolverFor({ work: 'http://127.0.0.1:9' }));
  const first = await request(`${gateway.url}/async-function/work`, { method: 'POST', body: 'one' });
  await first.body.dump();
  const firstId = String(first.headers['x-call-id']);
  t.ok(groupKeyOf(firstId), 'a grouped call id');

  const chained = await request(`${gateway.url}/async-function/work`, { method: 'POST', body: 'two', headers: { 'x-call-id': firstId } });
  await chained.body.dump();
  t.equal(chained.statusCode, 202);
  t.not(chained.headers['x-call-id'], firstId, 'a fresh call id');
  t.equal(chained.headers['x-parent-call-id'], firstId, 'the grouped one as its parent');
  t.equal((await status(`${gateway.url}/async-function/${firstId}`)).record?.state, 'queued', 'the first is unchanged');

  const cancel = await request(`${gateway.url}/async-function/${firstId}`, { method: 'DELETE' });
  await cancel.body.dump();
  t.equal(cancel.statusCode, 202, 'a queued grouped invocation can be cancelled');
});
