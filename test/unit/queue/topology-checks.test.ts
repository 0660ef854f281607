import type { ConsumerInfo, StreamInfo } from '@nats-io/jetstream';
import t from 'tap';
import type { QueueSpec } from '../../../src/queue/topology.js';
import { checkConsumer, checkServer, checkStream, subjectMatches } from '../../../src/queue/topology-checks.js';

const spec: QueueSpec = {
  stream: 'faas-request',
  subject: 'faas-request',
  durable: 'faas-workers',
  replicas: 1,
  storage: 'file',
  ackWaitMs: 60_000,
  maxAckPending: 10_001,
};

// Only the fields the checks read; the rest of StreamInfo/ConsumerInfo is irrelevant to them.
const stream = (config: Record<string, unknown>) =>
  ({ config: { subjects: ['faas-request'], discard: 'new', max_msgs: -1, max_bytes: -1, max_age: 0, num_replicas: 1, ...config } }) as unknown as StreamInfo;
const consumer = (config: Record<string, unknown>) =>
  ({
    config: { ack_policy: 'explicit', ack_wait: 60_000_000_000, max_ack_pending: 10_001, max_deliver: -1, filter_subject: 'faas-request', ...config },
  }) as unknown as ConsumerInfo;

t.test('subject wildcards', async (t) => {
  t.ok(subjectMatches('faas-request', 'faas-request'));
  t.ok(subjectMatches('faas.*', 'faas.request'));
  t.ok(subjectMatches('faas.>', 'faas.a.b'));
  t.ok(subjectMatches('>', 'faas-request'));
  t.notOk(subjectMatches('faas.*', 'faas.a.b'));
  t.notOk(subjectMatches('faas.>', 'faas'));
  t.notOk(subjectMatches('other', 'faas-request'));
});

t.test('a compatible operator-made stream is used as it is', async (t) => {
  t.same(checkStream(stream({}), spec), { problems: [], warnings: [] });
  t.same(checkStream(stream({ subjects: ['faas-*'] }), spec).problems, ['its subjects ["faas-*"] do not include "faas-request"']);
  t.same(checkStream(stream({ subjects: ['*'] }), spec).problems, []);
});

t.test('a stream that may drop accepted work, or has other replicas, is reported', async (t) => {
  const { warnings } = checkStream(stream({ discard: 'old', max_msgs: 1000, num_replicas: 3 }), spec);
  t.match(warnings[0], /discard policy "old"/);
  t.match(warnings[1], /has 3 replicas, stream_replication asks for 1/);
});

t.test('an incompatible consumer is refused with every reason', async (t) => {
  t.same(checkConsumer(consumer({}), spec, 10), { problems: [], warnings: [] });
  const { problems } = checkConsumer(consumer({ ack_policy: 'none', deliver_subject: 'push.here', filter_subject: 'other', max_ack_pending: 5 }), spec, 10);
  t.same(problems, [
    'ack_policy is "none", must be "explicit"',
    'it is a push consumer; asyncfn needs a pull consumer',
    'filter_subject "other" does not match "faas-request"',
    'max_ack_pending 5 is below max_inflight 10',
  ]);
});

t.test('a consumer with limited deliveries or another ack_wait is used with a warning', async (t) => {
  const { problems, warnings } = checkConsumer(consumer({ max_deliver: 5, ack_wait: 30_000_000_000 }), spec, 10);
  t.same(problems, []);
  t.match(warnings[0], /max_deliver is 5/);
  t.match(warnings[1], /ack_wait is 30000ms, ack_wait asks for 60000ms; using the consumer's/);
});

t.test('checkServer: a nats-server before 2.10.16 is warned about (a retry may come only after ack_wait); later ones are not', async (t) => {
  for (const version of ['2.9.10', '2.10.15', 'v2.10.0', '1.4.1'])
    t.match(checkServer(version), [/holds it until ack_wait.*2\.10\.16.*clears the requests it ends/], version);
  for (const version of ['2.10.16', '2.10.29', '2.11.0', '2.12.1', '3.0.0', '2.11.0-RC.1']) t.same(checkServer(version), [], version);
  t.same(checkServer(undefined), [], 'no INFO: nothing to say');
  t.same(checkServer('nightly'), [], 'an unreadable version: nothing to say');
});
