import t from 'tap';
import { configFor, resolverFor, spawnAsyncfn, startTestGateway, writeFunctionsFile } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { scriptedHandler, startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';

t.test('with log_level=debug every state an invocation passes through is logged with its call id and attempt', async (t) => {
  const nats = await startNatsServer(t);
  const fn = await startFunctionServer(t, scriptedHandler((n) => ({ status: n === 1 ? 503 : 200 })));
  const sink = await startCallbackSink(t);
  const functionsFile = await writeFunctionsFile(t, { work: fn.url });
  const gateway = await startTestGateway(t, configFor(nats.url), resolverFor({ work: fn.url }));
  const worker = await spawnAsyncfn(t, 'worker', {
    NATS_URL: nats.url,
    functions_file: functionsFile,
    log_level: 'debug',
    max_retry_attempts: '2',
    initial_retry_wait: '50ms',
  });
  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  await worker.waitForLog((l) => l.msg === 'invocation acked' && l.callId === callId, 'invocation acked');

  const states = worker.logs
    .filter((l) => l.callId === callId && typeof l.state === 'string')
    .map((l) => `${String(l.attempt)}:${String(l.state)}`);
  t.comment(states.join(' '));
  t.same(states, [
    '1:queued',
    '1:invoking',
    '1:deciding',
    '1:retrying',
    '1:retryScheduled',
    '2:queued',
    '2:invoking',
    '2:deciding',
    '2:reporting',
    '2:callback',
    '2:acking',
    '2:acked',
  ]);
  const line = worker.logs.find((l) => l.callId === callId && l.state === 'invoking')!;
  t.match(line, { function: 'work', queue: 'faas-request', attempt: 1, msg: 'invocation invoking' });
});
