/**
 * The plain worker (issue 12): the asyncfn drain's job done the way nats.js's and undici's
 * documentation show, and nothing a queue-worker owes its users. It pulls as many messages as it
 * has free slots (of `concurrency`), POSTs each body to the function with undici, POSTs the answer
 * to the invocation's callback URL with the OpenFaaS callback headers (peer-job.mjs, as the BullMQ
 * worker does), then acks (unconfirmed). No machine, no record, no retries, no dead letters, no
 * ack-extend, no metrics. What it costs per invocation is what those two libraries cost for this
 * job, used plainly, on this box.
 *
 * Plain JavaScript, run as its own process so its CPU time and RSS are its own. It binds to the
 * queue's durable consumer, which an asyncfn worker created earlier in the same run.
 * argv: <nats url> <stream> <durable> <function url> <concurrency>. Prints "ready" once bound.
 */
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Agent } from 'undici';
import { runJob } from './peer-job.mjs';

const [servers, stream, durable, functionUrl, concurrency] = process.argv.slice(2);
const slots = Number(concurrency);
const dispatcher = new Agent({ connections: slots + 16 });
const nc = await connect({ servers });
const consumer = await jetstream(nc).consumers.get(stream, durable);

let free = slots;
/** Resolves the wait for a free slot, when the loop waits for one. */
let slotFreed;

async function handle(msg) {
  await runJob({
    functionUrl,
    callbackUrl: msg.headers.get('Asyncfn-Callback-Url'),
    callId: msg.headers.get('Asyncfn-Call-Id'),
    body: msg.data,
    dispatcher,
  });
  msg.ack();
}

function release() {
  free += 1;
  const wake = slotFreed;
  slotFreed = undefined;
  wake?.();
}

// The last acks out before the connection closes: the next section reuses the consumer.
process.once(
  'SIGTERM',
  () =>
    void nc
      .flush()
      .then(() => nc.close())
      .then(() => process.exit(0)),
);
process.stdout.write('ready\n');
for (;;) {
  if (free === 0) await new Promise((resolve) => (slotFreed = resolve));
  const batch = await consumer.fetch({ max_messages: free, expires: 2_000 });
  for await (const msg of batch) {
    free -= 1;
    handle(msg)
      .catch((err) => console.error(err))
      .finally(release);
  }
}
