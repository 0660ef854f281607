import t from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { enqueueMany } from '../helpers/enqueue.js';
import { scriptedHandler } from '../helpers/http-servers.js';

// The case, as an operator moving from the OpenFaaS Pro JetStream queue-worker would
// configure it: nats_host/nats_port instead of NATS_URL, retry_http_codes instead of
// http_retry_codes. Before, the worker stopped with "NATS_URL (or faas_nats_address) is
// required", and with NATS_URL a 418 was not retried, in silence.
t.test('a worker configured with OpenFaaS Pro names connects and retries what retry_http_codes lists', async (t) => {
  const { fn, sink, gateway, nats, workerEnv } = await startProcessStack(
    t,
    scriptedHandler((n) => ({ status: n === 1 ? 418 : 200 })),
  );
  const { NATS_URL: _natsUrl, ...rest } = workerEnv;
  const worker = await spawnAsyncfn(
    t,
    'worker',
    {
      ...rest,
      nats_host: '127.0.0.1',
      nats_port: String(nats.port),
      retry_http_codes: '418',
      initial_retry_wait: '100ms',
      max_retry_wait: '100ms',
      max_retry_attempts: '3',
      nats_durable: 'faas-workers',
      print_request_body: 'true',
    },
    { unset: ['NATS_URL'] },
  );

  const [callId] = await enqueueMany(gateway.url, 'work', 1, sink.url);
  const callback = await sink.waitForCallId(callId!);
  t.equal(callback.headers['x-function-status'], '200', 'the 418 was retried and the retry succeeded');
  t.equal(callback.headers['x-retry'], '1');
  t.equal(fn.requests.length, 2);
  t.ok(
    worker.logs.some((l) => l.level === 40 && l.msg === 'print_request_body is an OpenFaaS setting asyncfn does not read: use write_debug=true'),
    'an OpenFaaS name asyncfn has no equivalent for is warned about',
  );
  t.notOk(
    worker.logs.some((l) => l.msg.startsWith('nats_durable')),
    'nats_durable=faas-workers is what asyncfn does anyway: no warning',
  );
});
