import t, { type Test } from 'tap';
import { spawnAsyncfn, startProcessStack } from '../helpers/asyncfn.js';
import { startFunctionServer } from '../helpers/http-servers.js';
import { request } from 'undici';

const SECRET = 'Bearer s3cr3t-token';
const COOKIE = 'session=hunter2';
const SIGNATURE = 'sha1=0123456789abcdef';

async function runOne(t: Test, writeDebug: boolean, logLevel: 'debug' | 'info' = 'debug') {
  const { fn, sink, gateway, workerEnv } = await startProcessStack(t);
  const worker = await spawnAsyncfn(t, 'worker', {
    ...workerEnv,
    log_level: logLevel,
    write_debug: String(writeDebug),
  });
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const res = await request(`${gateway.url}/async-function/work?api_key=QSECRET1&access_token=QSECRET2&page=2`, {
    method: 'POST',
    body: 'the request body',
    headers: { authorization: SECRET, cookie: COOKIE, 'x-hub-signature': SIGNATURE, 'x-callback-url': sink.url, traceparent, 'x-custom': 'kept' },
  });
  await res.body.dump();
  const callId = String(res.headers['x-call-id']);
  await worker.waitForLog((l) => l.msg === 'invocation acked' && l.callId === callId, 'invocation acked');
  return { worker, callId, fn };
}

t.test('every log line about an invocation carries call id, function, queue, attempt and trace id; secrets are redacted', async (t) => {
  const { worker, callId, fn } = await runOne(t, true);
  const lines = worker.logs.filter((l) => l.callId === callId);
  // One per state (queued, invoking, callback, settling, acked) and write_debug's request line.
  t.ok(lines.length >= 6, `${lines.length} lines about the invocation`);
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

t.test('write_debug at log_level=info: request and response bodies at info, headers redacted', async (t) => {
  const { worker, callId } = await runOne(t, true, 'info');
  const request = worker.logs.find((l) => l.msg === 'invocation request' && l.callId === callId);
  t.match(
    request,
    {
      level: 30,
      method: 'POST',
      headers: { authorization: '[redacted]', cookie: '[redacted]', 'x-hub-signature': '[redacted]', 'x-custom': 'kept' },
      requestBody: 'the request body',
      requestBytes: 16,
    },
    'the request as the function gets it, at info',
  );
  t.equal(request?.query, 'api_key=[redacted]&access_token=[redacted]&page=2', 'secret query values redacted, the rest kept');
  const settled = worker.logs.find((l) => l.msg === 'invocation acked' && l.callId === callId);
  t.match(settled, { level: 30, responseBody: 'the request body', responseBytes: 16 }, 'the echo function answered with the body');
  const raw = JSON.stringify(worker.logs);
  for (const secret of ['s3cr3t', 'hunter2', '0123456789abcdef', 'QSECRET1', 'QSECRET2']) t.notOk(raw.includes(secret), `${secret} never reaches the logs`);
});

t.test('callback lines (retry, dead-lettered) carry call id, function, queue, attempt and trace id', async (t) => {
  const { gateway, workerEnv } = await startProcessStack(t);
  const receiver = await startFunctionServer(t, (_req, res) => void res.writeHead(503).end());
  // The worker's direct attempt, then a retry from the callback stream, then the last one.
  const worker = await spawnAsyncfn(t, 'worker', { ...workerEnv, callback_max_attempts: '3', callback_initial_wait: '50ms', callback_max_wait: '50ms' });
  const res = await request(`${gateway.url}/async-function/work`, {
    method: 'POST',
    body: 'x',
    headers: { 'x-callback-url': `${receiver.url}/cb`, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
  });
  await res.body.dump();
  const callId = String(res.headers['x-call-id']);
  await worker.waitForLog((l) => l.msg === 'callback deadLettered' && l.callId === callId, 'callback deadLettered');
  const fields = { callId, function: 'work', queue: 'faas-request', traceId: '0af7651916cd43dd8448eb211c80319c' };
  t.match(
    worker.logs.find((l) => l.msg === 'callback retry'),
    { ...fields, attempt: 2 },
  );
  t.match(
    worker.logs.find((l) => l.msg === 'callback deadLettered'),
    { ...fields, attempt: 3 },
  );
});

t.test('write_debug: a long or binary body is cut and shown as base64', async (t) => {
  const { sink, gateway, workerEnv } = await startProcessStack(t);
  const worker = await spawnAsyncfn(t, 'worker', { ...workerEnv, write_debug: 'true' });
  const body = Buffer.concat([Buffer.from([0xff, 0x00, 0xfe]), Buffer.alloc(10_000, 0x41)]);
  const res = await request(`${gateway.url}/async-function/work`, { method: 'POST', body, headers: { 'x-callback-url': sink.url } });
  await res.body.dump();
  const callId = String(res.headers['x-call-id']);
  const settled = await worker.waitForLog((l) => l.msg === 'invocation acked' && l.callId === callId, 'invocation acked');
  const logged = worker.logs.find((l) => l.msg === 'invocation request' && l.callId === callId)!;
  const marker = '…[truncated, 10003 bytes in all]';
  t.match(logged, { requestBodyEncoding: 'base64', requestBytes: 10_003 });
  t.ok(String(logged.requestBody).endsWith(marker), 'cut, with a marker');
  t.same(Buffer.from(String(logged.requestBody).slice(0, -marker.length), 'base64'), body.subarray(0, 4096), 'the first 4 KiB, exactly');
  t.match(settled, { responseBodyEncoding: 'base64', responseBytes: 10_003 });
});

for (const logLevel of ['debug', 'info'] as const) {
  t.test(`without write_debug no body is logged (log_level=${logLevel})`, async (t) => {
    const { worker } = await runOne(t, false, logLevel);
    const raw = JSON.stringify(worker.logs);
    t.notOk(raw.includes('the request body'), 'no request body');
    t.notOk(
      worker.logs.some((l) => 'responseBody' in l || 'requestBody' in l || l.msg === 'invocation request'),
      'no body fields',
    );
  });
}
