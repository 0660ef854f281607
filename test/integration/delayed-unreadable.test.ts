import { jetstreamManager } from '@nats-io/jetstream';
import { MsgHdrsImpl } from '@nats-io/nats-core';
import { pino } from 'pino';
import t from 'tap';
import { connectQueue } from '../../src/nats/connection.js';
import type { DeadLetterMeta, RawMessage } from '../../src/queue/dead-letter.js';
import { startDelayedScheduler } from '../../src/queue/delayed.js';
import { encodeEnvelope } from '../../src/queue/envelope.js';
import { DELAYED_STREAM, delayedSubject, ensureDelayedStream, ensureStream, queueSpecFor, schedulerDurable } from '../../src/queue/topology.js';
import { configFor } from '../helpers/asyncfn.js';
import { deferred } from '../helpers/deferred.js';
import { testInvocation } from '../helpers/invocations.js';
import { startNatsServer } from '../helpers/nats-server.js';

/**
 * The delayed scheduler (src/queue/delayed.ts) and a message in the delayed stream whose header
 * block nats.js cannot read (only a foreign publisher writes one): it can never be moved onto its
 * queue, so it is dead-lettered as poison and acked, as the queue's own pull does, not redelivered
 * every ack_wait for ever.
 */

const silent = pino({ level: 'silent' });

t.test('a delayed message whose headers cannot be read is dead-lettered as poison once, and acked', async (t) => {
  const nats = await startNatsServer(t);
  const queue = await connectQueue({ url: nats.url, name: 'delayed-unreadable-test', logger: silent });
  t.teardown(() => queue.close());
  const jsm = await jetstreamManager(queue.nc);
  const js = jsm.jetstream();
  const spec = queueSpecFor(configFor(nats.url));
  await ensureStream(jsm, spec, silent);
  await ensureDelayedStream(jsm, { replicas: 1, storage: 'file', duplicateWindowMs: 60_000 }, silent);

  // A due envelope, plus a header name with a space: written as a foreign client would, past nats.js's checks.
  const record = Object.create(null) as Record<string, string[]>;
  for (const [key, values] of encodeEnvelope(testInvocation({ callId: 'unreadable', notBeforeMs: Date.now() - 1_000 })).headers) record[key] = [...values];
  record['Bad Name'] = ['x'];
  await js.publish(delayedSubject(spec.subject), new TextEncoder().encode('its body'), { headers: MsgHdrsImpl.fromRecord(record) });

  const letters: Array<{ original: RawMessage; meta: DeadLetterMeta }> = [];
  const first = deferred<void>();
  const scheduler = await startDelayedScheduler({
    queue,
    js,
    jsm,
    spec,
    logger: silent,
    deadLetter: (original, meta) => {
      letters.push({ original, meta });
      first.resolve();
      return Promise.resolve();
    },
  });
  await first.promise;
  await scheduler.close(5_000);

  t.equal(letters.length, 1, 'one dead letter');
  t.match(letters[0]!.meta, { reason: 'poison', queue: spec.stream, attempts: 1, error: /^unreadable headers: / });
  t.equal(letters[0]!.original.headers, undefined, 'kept without its unreadable headers');
  t.equal(Buffer.from(letters[0]!.original.data).toString(), 'its body', 'with its body');
  const consumer = await jsm.consumers.info(DELAYED_STREAM, schedulerDurable(spec));
  t.equal(consumer.num_ack_pending, 0, 'acked');
  t.equal(consumer.num_pending, 0, 'nothing left to deliver');
  t.equal(consumer.num_redelivered, 0, 'never redelivered');
  t.equal((await jsm.streams.info(spec.stream)).state.messages, 0, 'nothing moved onto the queue');
});
