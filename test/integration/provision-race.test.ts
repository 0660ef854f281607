import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import t from 'tap';
import { testConfig } from '../../src/config/index.js';
import { ensureDeadLetterStream, ensureStream, openKeysBucket, openKvBucket, queueSpecFor } from '../../src/queue/topology.js';
import { startNatsServer } from '../helpers/nats-server.js';

/*
 * A gateway and a worker starting at once against a fresh nats-server both create what is
 * missing. Two creates of one stream race: nats-server 2.9 may refuse the second ("subjects
 * overlap with an existing stream", about once in 60 racing KV creates here), and that process
 * used to fail to start. Each create that loses the race now takes the stream the other made.
 */

const config = testConfig();
const silent = pino({ enabled: false });
const ROUNDS = 40;

t.test('two processes creating the same streams and buckets at once both start, every round', async (t) => {
  const nats = await startNatsServer(t);
  const [a, b] = await Promise.all([connect({ servers: nats.url }), connect({ servers: nats.url })]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const [jsmA, jsmB] = await Promise.all([jetstreamManager(a), jetstreamManager(b)]);
  const bucketOptions = { replicas: 1, storage: 'file' as const, ttlMs: 60_000 };

  const failures: string[] = [];
  const both = async (what: string, create: (side: 0 | 1) => Promise<unknown>): Promise<void> => {
    const results = await Promise.allSettled([create(0), create(1)]);
    for (const r of results) if (r.status === 'rejected') failures.push(`${what}: ${String(r.reason)}`);
  };
  await both('keys bucket', (side) => openKeysBucket(side === 0 ? a : b, { replicas: 1, storage: 'file' }));
  await both('dead-letter stream', (side) => ensureDeadLetterStream(side === 0 ? jsmA : jsmB, { replicas: 1, storage: 'file' }));
  for (let i = 0; i < ROUNDS; i++) {
    const spec = { ...queueSpecFor(config, `race-${i}`), storage: 'file' as const };
    await both(`queue stream ${spec.stream}`, (side) => ensureStream(side === 0 ? jsmA : jsmB, spec, silent));
    await both(`bucket race_${i}`, (side) => openKvBucket(side === 0 ? a : b, `race_${i}`, bucketOptions));
  }
  t.same(failures, [], 'no create refused');

  const streams = new Set<string>();
  for await (const info of jsmA.streams.list()) streams.add(info.config.name);
  t.equal([...streams].filter((name) => /^race-\d+$/.test(name)).length, ROUNDS, 'one queue stream each');
  t.equal([...streams].filter((name) => /^KV_race_\d+$/.test(name)).length, ROUNDS, 'one bucket each');
});
