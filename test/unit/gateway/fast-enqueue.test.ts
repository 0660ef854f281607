import { EventEmitter, once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import t from 'tap';
import { FunctionNotFoundError } from '../../../src/errors.js';
import type { ResolvedFunction } from '../../../src/functions/index.js';
import type { EnqueuePorts } from '../../../src/gateway/enqueue.js';
import { createFastEnqueue, type FastEnqueueDeps } from '../../../src/gateway/fast-enqueue.js';
import { installInMemoryTracing } from '../../helpers/tracing.js';

const ECHO: ResolvedFunction = { name: 'echo', namespace: 'openfaas-fn', url: 'http://127.0.0.1:1/', annotations: {} };

/** A request as node:http hands it over: its head, then its body as events. */
function incoming(over: { method?: string; url?: string; httpVersion?: string; headers?: Record<string, string>; extraFields?: number } = {}) {
  const headers: Record<string, string> = { host: 'gw', 'content-length': '2', ...over.headers };
  for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];
  const rawHeaders = Object.entries(headers).flat();
  for (let i = 0; i < (over.extraFields ?? 0); i++) rawHeaders.push(`x-extra-${i}`, 'v');
  return Object.assign(new EventEmitter(), {
    method: over.method ?? 'POST',
    url: over.url ?? '/async-function/echo',
    httpVersion: over.httpVersion ?? '1.1',
    headers,
    rawHeaders,
  }) as unknown as IncomingMessage;
}

/** A response that keeps what was written to it. */
function response() {
  const written = { status: 0, headers: {} as Record<string, string | number>, body: '', ended: new EventEmitter(), destroyed: false };
  const res = {
    // As node takes them: a record, or a flat list of names and values.
    writeHead(status: number, headers: Record<string, string | number> | string[]) {
      written.status = status;
      written.headers = Array.isArray(headers) ? Object.fromEntries(headers.flatMap((v, i) => (i % 2 === 0 ? [[v, headers[i + 1]!]] : []))) : headers;
      return res;
    },
    end(body?: string) {
      written.body = body ?? '';
      written.ended.emit('end');
    },
    destroy() {
      written.destroyed = true;
    },
  };
  return { res: res as unknown as ServerResponse, written };
}

function deps(over: Partial<FastEnqueueDeps> = {}, ports: Partial<EnqueuePorts> = {}) {
  const counted: Array<{ url: string; route: string; status: number }> = [];
  const logged: string[] = [];
  let closing = false;
  const full: FastEnqueueDeps = {
    ports: {
      resolver: { resolve: async (ref) => (ref.name === 'echo' ? ECHO : undefined) },
      checkCallback: async () => undefined,
      router: { route: async () => ({ queue: 'q', subject: 'q', queueSubject: 'q' }) },
      records: { createIfAbsent: async () => true, createUnconfirmed: () => undefined, delete: async () => undefined },
      idempotency: { claim: async () => ({ first: true, callId: 'x', msgId: 'm' }), release: async () => undefined } as never,
      publisher: { publish: async () => ({ seq: 1, duplicate: false }) },
      newCallId: () => 'call-1',
      logger: { debug: () => undefined },
      publishTimeoutMs: 1_000,
      ...ports,
    },
    read: { defaultNamespace: 'openfaas-fn', maxDelayMs: 60_000, now: () => 1_700_000_000_000 },
    maxBodyBytes: 100,
    maxHeaderCount: 10,
    invokeAuth: false,
    isReady: () => true,
    protocol: { isClosing: () => closing },
    count: (request, route, status) => void counted.push({ url: request.url, route, status }),
    logger: { warn: (_obj: object, msg: string) => void logged.push(`warn ${msg}`), error: (_obj: object, msg: string) => void logged.push(`error ${msg}`) } as never,
    ...over,
  };
  return { deps: full, counted, logged, close: () => (closing = true) };
}

/** Hands `req` to the taker, sends its body, and resolves with what was answered. */
async function answered(take: ReturnType<typeof createFastEnqueue>, req: IncomingMessage, body = 'hi') {
  const { res, written } = response();
  const taken = take(req, res);
  if (!taken) return { taken, written };
  const ended = once(written.ended, 'end');
  req.emit('data', Buffer.from(body));
  req.emit('end');
  await ended;
  return { taken, written };
}

t.test('the common request is taken: POST /async-function/<name> with a Content-Length body, answered 202 and counted', async (t) => {
  const d = deps();
  const { taken, written } = await answered(createFastEnqueue(d.deps), incoming());
  t.ok(taken);
  t.equal(written.status, 202);
  t.same(written.headers, { 'x-call-id': 'call-1', 'content-length': '0' });
  t.same(d.counted, [{ url: '/async-function/echo', route: '/async-function/*', status: 202 }], 'counted under the route fastify names');
});

t.test('everything else is left to fastify, untouched', async (t) => {
  const cases: Array<[string, Parameters<typeof incoming>[0], Partial<FastEnqueueDeps>?]> = [
    ['another method', { method: 'GET' }],
    ['another route', { url: '/function/echo' }],
    ['an absolute-form target', { url: 'http://gw/async-function/echo' }],
    ['a progress report', { url: '/async-function/call-1/progress?exp=1&sig=abc' }],
    ['a chunked body', { headers: { 'content-length': '', 'transfer-encoding': 'chunked' } }],
    ['no Content-Length', { headers: { 'content-length': '' } }],
    ['a Content-Length that is no number', { headers: { 'content-length': '1e3' } }],
    ['a body over max_body_size (413, or the payload bucket)', { headers: { 'content-length': '101' } }],
    ['HTTP/1.1 without Host (400)', { headers: { host: '' } }],
    ['more fields than max_header_count (431)', { extraFields: 10 }],
    ['invoke auth configured', {}, { invokeAuth: true }],
    ['NATS down (503)', {}, { isReady: () => false }],
  ];
  for (const [what, request, over] of cases) {
    const req = incoming(request);
    const { taken } = await answered(createFastEnqueue(deps(over).deps), req);
    t.notOk(taken, what);
    t.equal(req.listenerCount('data'), 0, `${what}: its body is not read`);
  }
  t.ok((await answered(createFastEnqueue(deps().deps), incoming({ httpVersion: '1.0', headers: { host: '' } }))).taken, 'HTTP/1.0 needs no Host');

  const closing = deps();
  closing.close();
  t.notOk((await answered(createFastEnqueue(closing.deps), incoming())).taken, 'the server is closing (503)');
});

t.test('while tracing is on, every request goes to fastify (its route makes the spans)', async (t) => {
  const tracing = await installInMemoryTracing();
  t.teardown(() => tracing.shutdown());
  t.notOk((await answered(createFastEnqueue(deps().deps), incoming())).taken);
});

t.test('refusals are answered as the error handler answers them; anything else is a logged 500', async (t) => {
  const refused = deps();
  const notFound = await answered(createFastEnqueue(refused.deps), incoming({ url: '/async-function/nope' }));
  t.equal(notFound.written.status, 404);
  t.same(notFound.written.headers, { 'x-asyncfn-error': new FunctionNotFoundError('nope').code, 'content-type': 'text/plain; charset=utf-8', 'content-length': 26 });
  t.equal(notFound.written.body, 'function "nope" not found\n');

  const badHeader = await answered(createFastEnqueue(refused.deps), incoming({ headers: { 'x-call-id': 'bad id!' } }));
  t.equal(badHeader.written.status, 400, 'a header the route cannot read: 400');
  t.same(
    refused.counted.map((c) => c.status),
    [404, 400],
  );

  const down = deps({}, { publisher: { publish: () => Promise.reject(new Error('broken pipe')) } });
  const unavailable = await answered(createFastEnqueue(down.deps), incoming());
  t.equal(unavailable.written.status, 503, 'a JetStream failure is a 503');
  t.equal(unavailable.written.headers['retry-after'], '1');
  t.match(down.logged, [/^warn /], '5xx refusals are logged as warnings');

  const bug = deps({}, { resolver: { resolve: () => Promise.reject(new TypeError('oops')) } });
  const internal = await answered(createFastEnqueue(bug.deps), incoming());
  t.equal(internal.written.status, 500);
  t.same(bug.logged, ['error unhandled gateway error']);
});

t.test('a caller gone before its body arrived is not answered and not enqueued', async (t) => {
  let published = 0;
  const d = deps({}, { publisher: { publish: async () => (published++, { seq: 1, duplicate: false }) } });
  const req = incoming();
  const { res, written } = response();
  t.ok(createFastEnqueue(d.deps)(req, res));
  req.emit('error', new Error('aborted'));
  t.ok(written.destroyed);
  t.equal(published, 0);
  t.same(d.counted, []);
});
