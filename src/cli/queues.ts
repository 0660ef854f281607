import { jetstreamManager } from '@nats-io/jetstream';
import { parseArgs } from 'node:util';
import { CALLBACK_STREAM, DEAD_LETTER_STREAM, DELAYED_STREAM, openRecordsIfPresent } from '../queue/topology.js';
import { formatQueuesTable } from './queues-format.js';
import { readQueues, SCAN_LIMITS, type DefaultQueueNames } from '../status/queue-stats.js';
import { queuesJson } from '../status/queue-stats-json.js';
import { connectForCommand, describeNatsError, type InspectDeps } from './status-nats.js';
import { describeError } from '../errors.js';

export const QUEUES_USAGE = `Usage: asyncfn queues [--json]

Every stream asyncfn manages, one row each: the default queue (faas-request), named queues
(a stream q with a durable consumer q-workers), then ${DELAYED_STREAM} (invocations waiting for
X-Delay-Seconds / X-Not-Before), ${CALLBACK_STREAM} (results whose callback is being retried) and
${DEAD_LETTER_STREAM}. Counts are JetStream's at the moment of asking.

Columns:
  PENDING      stored, never delivered to a worker yet (consumer num_pending);
               delayed: every invocation still waiting for its time;
               dead letters: every dead letter (waiting for replay or purge)
  IN-FLIGHT    delivered and running on a worker now: ACK-PENDING minus RETRY-WAIT
  RETRY-WAIT   failed attempts nak'd with a back-off delay, waiting in JetStream for the next
               attempt (their invocation record says "retrying"; counted as waiting for up
               to 250 ms after the next attempt starts)
  ACK-PENDING  delivered, not acked yet: IN-FLIGHT + RETRY-WAIT (consumer num_ack_pending)
  REDELIVERED  of ACK-PENDING, delivered more than once: retry attempts running or waiting
               again, and messages redelivered after ack_wait (consumer num_redelivered;
               JetStream counts a retry only once it has been redelivered)
  CONSUMERS    JetStream consumers on the stream (normally 1: the durable all workers share;
               a worker is not a consumer)
  OLDEST       age of the oldest message not done yet (pending, running or waiting to retry)

Under a queue, one indented row per lane: a function's invocations (name.namespace) or one
X-Concurrency-Key's (name.namespace/key), each pulled through its own consumer (fair
scheduling); "lane ≤N" shows its concurrency limit over all workers. The queue's row counts
its lanes too; CONSUMERS then counts the lanes' consumers.

"-" where a column does not apply; "?" where it could not be told: JetStream counts waiting
retries as ack-pending, so they are told apart by reading each unacked message's record; that
is skipped above ${SCAN_LIMITS.messages} unacked messages (or ${SCAN_LIMITS.bytes / 1024 / 1024} MiB), when the stream keeps acked
messages, or when there is no records bucket.

Options:
  --json       {"at", "queues": [{name, kind (queue, delayed, callbacks, deadLetters), stream, consumer,
               messages, pending, inFlight, waitingRetries, ackPending, redelivered,
               waitingPulls (pull requests waiting: workers with free slots), consumers,
               oldestAt, oldestAgeMs, lanes: [{lane, consumer, pending, ackPending, inFlight,
               waitingRetries, limit}]}]}, null for "-" and "?"
  -h, --help   this text

Exit codes: 0 done, 1 NATS could not be reached or read, 2 bad arguments.`;

export interface QueuesDeps extends InspectDeps {
  /** The default queue's stream and consumer (config.queue). */
  readonly defaultQueue: DefaultQueueNames;
  /** Named queue q's durable consumer; default `q-workers`. */
  readonly durableFor?: (queue: string) => string;
}

/** `asyncfn queues [--json]` with the arguments after `queues`. Exit codes: 0 done, 1 failed, 2 bad arguments. */
export async function runQueuesCommand(args: readonly string[], deps: QueuesDeps): Promise<number> {
  const now = deps.now ?? Date.now;
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    const message = describeError(err);
    deps.err(`asyncfn queues: ${message.split(/\.\s/)[0] ?? message} (asyncfn queues --help)`);
    return 2;
  }
  if (values.help) {
    deps.out(QUEUES_USAGE);
    return 0;
  }

  const nc = await connectForCommand('queues', deps);
  if (!nc) return 1;
  try {
    const jsm = await jetstreamManager(nc);
    const rows = await readQueues({
      jsm,
      records: await openRecordsIfPresent(nc, jsm),
      defaultQueue: deps.defaultQueue,
      durableFor: deps.durableFor ?? ((queue) => `${queue}-workers`),
    });
    const at = now();
    if (values.json) {
      deps.out(JSON.stringify(queuesJson(rows, at), null, 2));
    } else if (rows.length === 0) {
      deps.out('no asyncfn queues on this server yet (a gateway or worker creates them)');
    } else {
      for (const line of formatQueuesTable(rows, at)) deps.out(line);
    }
    return 0;
  } catch (err) {
    deps.err(`asyncfn queues: ${describeNatsError(err)}`);
    return 1;
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}
