/**
 * The BullMQ peer of the asyncfn drain (issue 12), run as its own process so its CPU time and RSS
 * are its own. Plain JavaScript, so it runs without the TypeScript loader, as BullMQ users run it.
 *
 * The job shape is the asyncfn invocation's: POST the 1 KiB body to the function with undici,
 * then POST the function's answer to the job's callback URL with the OpenFaaS callback headers
 * (peer-job.mjs, as the plain worker does).
 * argv: <redis port> <queue name> <concurrency>. Prints "ready" on stdout once the worker runs.
 */
import { Worker } from 'bullmq';
import { Agent } from 'undici';
import { runJob } from './peer-job.mjs';

const [port, queueName, concurrency] = process.argv.slice(2);
const dispatcher = new Agent({ connections: Number(concurrency) + 16 });

const worker = new Worker(
  queueName,
  (job) => runJob({ functionUrl: job.data.functionUrl, callbackUrl: job.data.callbackUrl, callId: job.id, body: job.data.body, dispatcher }),
  {
    connection: { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null },
    concurrency: Number(concurrency),
    // As asyncfn settles: nothing kept after success.
    removeOnComplete: { count: 0 },
    removeOnFail: { count: 1000 },
  },
);
worker.on('error', (err) => console.error(err));
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void worker.close().then(() => process.exit(0));
});
