import t, { type Test } from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { request } from 'undici';

const SECRET = 'Bearer s3cr3t-token';
const COOKIE = 'session=hunter2';

async function runOne(t: Test, writeDebug: boolean) {
  const { fn, sink, gateway, workerEnv } = await startProcessStack(t);
  const worker = await spawnAsyncfn(t, 'worker', {
    ...workerEnv,
    log_level: 'debug',
    write_debug: String(writeDebug),
  });
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const res = await request(`${gateway.url}/async-function/work`, {
    method: 'POST',
    body: 'the request body',
    headers: { authorization: SECRET, cookie: COOKIE, 'x-callback-url': sink.url, traceparent },
  });
  await res.body.dump();
  const callId = String(res.headers['x-call-id']);
  await worker.waitForLog((l) => l.msg === 'invocation acked' && l.callId === callId, 'invocation acked');
  return { worker, callId, fn };
}

t.test('every log line about an invocation carries call id, function, queue, attempt and trace id; secrets are redacted', async (t) => {
  const { worker, callId, fn } = await runOne(t, true);
  const lines = worker.logs.filter((l) => l.callId === callId);
  t.ok(lines.length >= 8, `${lines.length} lines about the invocation`);
  for (const line of lines) {
    t.match(line, { callId, function: 'work', queue: 'faas-request', attempt: 1, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' }, line.msg);
  }
  const raw = JSON.stringify(worker.logs);
  t.notOk(raw.includes('s3cr3t'), 'the Authorization header never reaches the logs');
  t.notOk(raw.includes('hunter2'), 'nor the cookie');
  const debug = lines.find((l) => l.msg === 'invocation request')!;
  t.match(debug, { headers: { authorization: '[redacted]', cookie: '[redacted]' }, requestBody: 'the request body' }, 'write_debug logs the request');
  t.equal(fn.requests[0]?.headers.authorization, SECRET, 'the function still gets the header');
});

t.test('without write_debug no body is logged', async (t) => {
  const { worker } = await runOne(t, false);
  const raw = JSON.stringify(worker.logs);
  t.notOk(raw.includes('the request body'), 'no request body');
  t.notOk(worker.logs.some((l) => 'responseBody' in l || 'requestBody' in l), 'no body fields');
});
