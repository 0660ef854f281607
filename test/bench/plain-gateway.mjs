/**
 * The plain gateway (issue 13): POST /async-function/<name> answered the way node:http's and
 * nats.js's documentation show, and nothing else a gateway owes its users: it reads the body, publishes it to JetStream with the call id and
 * the callback URL as headers, awaits the PubAck, and answers 202 with X-Call-Id. No validation,
 * no limits, no function lookup, no callback URL check, no status record, no metrics.
 *
 * Plain JavaScript, run as its own process so its CPU time and RSS are its own.
 * argv: <nats url> <subject>. Prints its URL on stdout once it listens.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';

const [servers, subject] = process.argv.slice(2);
const nc = await connect({ servers });
const js = jetstream(nc);

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const callId = randomUUID();
    const h = headers();
    h.set('Asyncfn-Call-Id', callId);
    const callbackUrl = req.headers['x-callback-url'];
    if (typeof callbackUrl === 'string') h.set('Asyncfn-Callback-Url', callbackUrl);
    js.publish(subject, Buffer.concat(chunks), { headers: h }).then(
      () => {
        res.writeHead(202, { 'x-call-id': callId, 'content-length': '0' });
        res.end();
      },
      (err) => {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end(`${err.message}\n`);
      },
    );
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${server.address().port}\n`));
process.once('SIGTERM', () => void nc.close().then(() => process.exit(0)));
