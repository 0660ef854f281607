import { jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import type { Test } from 'tap';
import { testConfig } from '../../src/config/index.js';
import { ensureConsumer, ensureStream, queueSpecFor, type QueueSpec } from '../../src/queue/topology.js';
import { startNatsServer } from './nats-server.js';

/** A nats-server of its own with the default queue provisioned as the worker does it, in memory. */
export interface QueueStream {
  readonly natsUrl: string;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly spec: QueueSpec;
  /** The queue's durable pull consumer. */
  readonly consumer: Consumer;
}

/** Starts it (teardown stops it); the consumer lets `maxAckPending` messages be in flight. */
export async function startQueueStream(t: Test, maxAckPending: number): Promise<QueueStream> {
  const nats = await startNatsServer(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const spec = { ...queueSpecFor(testConfig()), storage: 'memory' as const };
  const silent = pino({ enabled: false });
  await ensureStream(jsm, spec, silent);
  await ensureConsumer(jsm, spec, maxAckPending, silent);
  const consumer = await js.consumers.get(spec.stream, spec.durable);
  return { natsUrl: nats.url, nc, js, jsm, spec, consumer };
}
