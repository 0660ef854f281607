import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { getGlobalDispatcher, request } from 'undici';
import { staticResolver } from '../../src/functions/static-file.js';
import { configFor, startStack, startTestGateway, startTestWorker, type Stack } from '../helpers/asyncfn.js';
import { startCallbackSink, startFunctionServer } from '../helpers/http-servers.js';
import { startNatsServer } from '../helpers/nats-server.js';
import { eventually } from '../helpers/eventually.js';
import { assertProperty, fuzzRun, httpFieldValue, httpToken, Tally } from '../helpers/fuzz.js';

/**
 * Random requests against a real gateway over real HTTP: never a crash, never a 5xx (other than
 * 503 with Retry-After while NATS is down), every refusal a 4xx with a one-line reason.
 */

// ---- arbitraries -----------------------------------------------------------------------------

const METHODS = [...['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE'], ...['PROPFIND', 'MKCOL', 'SEARCH', 'QUERY', 'LINK', 'M-SEARCH', 'PURGE']];
const method = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('POST', 'POST', 'GET', 'DELETE') },
  { weight: 3, arbitrary: fc.constantFrom(...METHODS) },
  { weight: 1, arbitrary: httpToken(10) },
);

const PREFIXES = [
  '/async-function/',
  '/async-function/',
  '/async-function/',
  '/async-function/',
  '/function/',
  '/function/',
  '/function/',
  '/system/functions',
  '/system/',
  '/healthz',
  '/readyz',
  '/metrics',
  '/',
  '//',
  '/async-function',
  '/ASYNC-FUNCTION/',
  '/async-function//',
  '/./async-function/',
  '/async-function/../function/',
  '/%61sync-function/',
  '/function/%2e%2e/async-function/',
];
const NAMES = [
  ...['work', 'work', 'work.openfaas-fn', 'work.other', 'missing', 'Work', '', '..', '.', '%00', '%2e%2e'],
  ...['w%C3%B6rk', 'a'.repeat(63), 'a'.repeat(300), 'work.', '.work', 'work..x'],
];
/** Printable ASCII: what a request target is made of. */
const targetChar = fc.integer({ min: 0x21, max: 0x7e });
const segment = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('', '.', '..', '%00', '%2e%2e', '%2F', '%', '%zz', '%E2%9C%93', '%F0%9F%92%A9', '~', 'x'.repeat(2000)) },
  { weight: 24, arbitrary: fc.array(targetChar, { maxLength: 20 }).map((codes) => String.fromCharCode(...codes).replace(/[?#]/g, '')) },
  // Raw latin1 bytes (undici sends chars up to 0xFF as single bytes); node refuses them in a target.
  {
    weight: 1,
    arbitrary: fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 4 }).map((codes) => String.fromCharCode(...codes)),
  },
);
const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom('?', '?a=1&a=2', '?%00', '?x=%E2%9C%93', '??', '?#frag', `?${'q'.repeat(4000)}`),
  fc.array(targetChar, { maxLength: 40 }).map((codes) => `?${String.fromCharCode(...codes)}`),
);
const path = fc
  .tuple(
    fc.constantFrom(...PREFIXES),
    fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: httpToken(12) }),
    fc.array(segment, { maxLength: 4 }),
    query,
    // Now and then a target longer than the header limit (16 KiB with the request line).
    fc.oneof({ weight: 20, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.integer({ min: 8_000, max: 20_000 }).map((n) => `/${'l'.repeat(n)}`) }),
  )
  .map(([prefix, name, segments, q, long]) => `${prefix}${name}${segments.map((s) => `/${s}`).join('')}${long}${q}`);

const CALL_IDS = [...['', ' ', 'a b', '.', 'a..b', '.a', 'a.', 'a'.repeat(128), 'a'.repeat(129), '%00', 'é'], ...['ok-1', 'ok.2=', '__proto__', 'x/y', '*', '>', 'a,b']];
const CALLBACKS = [
  '',
  'not a url',
  'ftp://example.test/x',
  'http://',
  'http://[::1',
  'javascript:alert(1)',
  'file:///etc/passwd',
  'data:text/plain,x',
  'http://127.0.0.1:1/x',
  'http://169.254.169.254/latest/meta-data',
  'http://[::ffff:127.0.0.1]/',
  'http://0x7f.1/',
  'https://example.com/hook?x=1',
  'HTTP://EXAMPLE.COM',
  'http://a b/',
  `http://example.com/${'p'.repeat(4000)}`,
];
/** Header names the gateway reads, in random case, and ones it must pass along or ignore. */
const NAMED = [
  'x-call-id',
  'x-callback-url',
  'content-type',
  'traceparent',
  'tracestate',
  'idempotency-key',
  'x-delay-seconds',
  'x-not-before',
  'x-store-result',
  'authorization',
  'cookie',
  'accept',
  'x-forwarded-for',
  'x-forwarded-host',
  'nats-msg-id',
  'asyncfn-version',
  'asyncfn-h-x',
  'x-openfaas-internal',
  'te',
  'trailer',
  'proxy-authorization',
];
const headerValue = fc.oneof(
  { weight: 8, arbitrary: httpFieldValue(60) },
  { weight: 1, arbitrary: httpFieldValue(6000) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      ...['\u00a0', 'v\u00a0', '=?pct?%zz', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
      ...['-1', '1e9', 'NaN', '99999999999999999999'],
    ),
  },
);
const header = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.mixedCase(fc.constantFrom(...NAMED)), headerValue) },
  { weight: 1, arbitrary: fc.tuple(fc.mixedCase(fc.constant('x-call-id')), fc.oneof(fc.constantFrom(...CALL_IDS), httpFieldValue(20), fc.uuid())) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.mixedCase(fc.constant('x-callback-url')), fc.oneof(fc.constantFrom(...CALLBACKS), fc.webUrl(), httpFieldValue(30))),
  },
  { weight: 6, arbitrary: fc.tuple(httpToken(), headerValue) },
);
const headers = fc.oneof(
  { weight: 12, arbitrary: fc.array(header, { maxLength: 12 }) },
  // Over max_header_count (100) or near it, with duplicates.
  { weight: 1, arbitrary: fc.array(header, { minLength: 90, maxLength: 130 }) },
);

const MAX_BODY = 1_024_000;
const body = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 2048 }) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_BODY, MAX_BODY + 1).map((n) => new Uint8Array(n)) },
);

interface FuzzRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Uint8Array | undefined;
}

/** Counterexamples print sizes, not megabytes. */
function described(r: FuzzRequest): FuzzRequest {
  return Object.assign(r, {
    [fc.toStringMethod]: () =>
      `${r.method} ${r.path.length > 200 ? `${r.path.slice(0, 200)}…(${r.path.length})` : r.path} headers=${JSON.stringify(
        r.headers.map(([n, v]) => [n, v.length > 80 ? `${v.slice(0, 80)}…(${v.length})` : v]),
      )} body=${r.body?.length ?? 'none'}`,
  });
}

/** Everything random: mostly refused early (parser, router, name checks). */
const randomRequest: fc.Arbitrary<FuzzRequest> = fc.record({ method, path, headers, body });

/** A request that is valid in every respect: it must be accepted (202). */
const validAsync: fc.Arbitrary<FuzzRequest> = fc
  .record({
    name: fc.constantFrom('work', 'work.openfaas-fn'),
    // Odd but harmless segments only: `..`, `%00` and the like are refused (path-suffix cases below).
    segments: fc.array(fc.constantFrom('a', 'a..b', '..a', '%20', '%E2%9C%93', '', 'x~y'), { maxLength: 3 }),
    q: fc.constantFrom('', '?a=1', '?a=1&a=2', '?%00'),
    callId: fc.option(fc.oneof(fc.uuid(), fc.constantFrom('ok-1', 'a.b.c', 'A=')), { nil: undefined }),
    extra: fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom('x-a', 'X-B', 'accept', 'x-forwarded-for'), httpFieldValue(40)),
        fc.tuple(fc.constant('content-type'), fc.constantFrom('application/json', 'text/plain; charset=utf-8', 'application/octet-stream', 'x/y')),
      ),
      { maxLength: 6 },
    ),
    body: fc.uint8Array({ maxLength: 4096 }),
  })
  .map(({ name, segments, q, callId, extra, body }) => ({
    method: 'POST',
    path: `/async-function/${name}${segments.map((s) => `/${s}`).join('')}${q}`,
    headers: [...(callId === undefined ? [] : [['x-call-id', callId] as const]), ['x-callback-url', 'https://example.com/hook'] as const, ...extra],
    body,
  }));

/** A valid synchronous call: proxied to the echo function (200). */
const validSync: fc.Arbitrary<FuzzRequest> = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
    name: fc.constantFrom('work', 'work.openfaas-fn'),
    // Odd but harmless segments only: `..`, `%00` and the like are refused (path-suffix cases below).
    segments: fc.array(fc.constantFrom('a', 'a..b', '..a', '%20', '%E2%9C%93', '', 'x~y'), { maxLength: 3 }),
    q: fc.constantFrom('', '?a=1', '?a=1&a=2', '?%00'),
    extra: fc.array(
      fc.tuple(
        fc.constantFrom('x-a', 'X-B', 'accept', 'x-call-id'),
        httpFieldValue(40).filter((v) => /^[\w.=-]+$/.test(v)),
      ),
      { maxLength: 4 },
    ),
    body: fc.option(fc.uint8Array({ maxLength: 2048 }), { nil: undefined }),
  })
  .map(({ method, name, segments, q, extra, body }) => ({
    method,
    path: `/function/${name}${segments.map((s) => `/${s}`).join('')}${q}`,
    headers: [...extra, ['content-type', 'application/octet-stream'] as const],
    body: method === 'GET' || method === 'OPTIONS' ? undefined : body,
  }));

/** A valid request with one part replaced by a random one: refused (or not) deep inside the route. */
const mutatedRequest: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.oneof(validAsync, validSync),
    fc.oneof(
      method.map((m) => (r: FuzzRequest): FuzzRequest => ({ ...r, method: m })),
      segment.map((seg) => (r: FuzzRequest): FuzzRequest => ({ ...r, path: r.path.replace(/(\?|$)/, `/${seg}$1`) })),
      query.map((q) => (r: FuzzRequest): FuzzRequest => ({ ...r, path: `${r.path.split('?')[0]}${q}` })),
      fc.constantFrom(...NAMES).map((n) => (r: FuzzRequest): FuzzRequest => ({ ...r, path: r.path.replace(/^(\/(?:async-)?function\/)[^/?]+/, `$1${n}`) })),
      fc.array(header, { minLength: 1, maxLength: 4 }).map((hs) => (r: FuzzRequest): FuzzRequest => ({ ...r, headers: [...r.headers, ...hs] })),
      headers.map((hs) => (r: FuzzRequest): FuzzRequest => ({ ...r, headers: hs })),
      body.map((b) => (r: FuzzRequest): FuzzRequest => ({ ...r, body: b })),
    ),
  )
  .map(([r, mutate]) => mutate(r));

const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc
  .oneof({ weight: 1, arbitrary: randomRequest }, { weight: 2, arbitrary: mutatedRequest })
  .map((r) => described({ ...r }));

// ---- sending and checking --------------------------------------------------------------------

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * One request over a fresh connection, its target sent verbatim: undici's `request(url)` would run
 * the URL through WHATWG parsing first, resolving `..` and re-encoding, so the dispatcher is called
 * with `path` instead.
 */
async function send(base: string, r: FuzzRequest): Promise<Answer | { readonly reset: string }> {
  try {
    const res = await getGlobalDispatcher().request({
      origin: base,
      path: r.path,
      method: r.method,
      headers: r.headers.flat(),
      body: r.body,
      reset: true,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text };
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    // The server may answer and close while undici is still writing a large request.
    if (/ECONNRESET|EPIPE|UND_ERR_SOCKET/.test(code)) return { reset: `${code}: ${(err as Error).message}` };
    throw err;
  }
}

/** Roughly what the request puts on the wire before the body: request line and header fields. */
function headBytes(r: FuzzRequest): number {
  return r.method.length + r.path.length + 12 + r.headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0) + 64;
}

/** Only a request the server must refuse before reading it all may be cut short. */
function checkReset(r: FuzzRequest, a: { reset: string }, tally: Tally): void {
  const oversized = headBytes(r) > 16_000 || (r.body?.length ?? 0) > MAX_BODY || r.headers.length > 100;
  assert.ok(oversized, `connection reset on an ordinary request: ${a.reset}`);
  tally.add('reset');
}

const ALLOWED_UP = new Set([200, 202, 400, 404, 405, 413, 415, 417, 431]);

/** A refusal carries X-Asyncfn-Error and a reason of exactly one line (HEAD answers carry no body). */
function checkRefusal(r: FuzzRequest, a: Answer): void {
  assert.match(String(a.headers['x-asyncfn-error']), /^ASYNCFN_ERR_[A-Z_]+$/, `a ${a.status} carries X-Asyncfn-Error: ${a.body.slice(0, 200)}`);
  if (r.method === 'HEAD') return;
  assert.ok(a.headers['content-type']?.toString().startsWith('text/plain'), `a ${a.status} is plain text, got ${String(a.headers['content-type'])}`);
  assert.match(a.body, /^[^\n]+\n?$/, `a ${a.status} gives a one-line reason, got ${JSON.stringify(a.body.slice(0, 200))}`);
}

function checkUp(r: FuzzRequest, a: Answer | { reset: string }, tally: Tally): void {
  if ('reset' in a) return checkReset(r, a, tally);
  tally.add(`status${a.status}`);
  // FUZZ_VERBOSE=1 counts refusals by their reason too.
  if (process.env.FUZZ_VERBOSE && a.status >= 400)
    tally.add(
      `${a.status} ${a.body
        .slice(0, 50)
        .replace(/[,=\n]/g, ' ')
        .trim()}`,
    );
  assert.ok(ALLOWED_UP.has(a.status), `status ${a.status} is not expected while NATS is up: ${a.body.slice(0, 300)}`);
  if (a.status >= 400) checkRefusal(r, a);
  if (a.status === 202) assert.ok(a.headers['x-call-id'], '202 carries X-Call-Id');
}

function classify(r: FuzzRequest, tally: Tally): void {
  const p = r.path.toLowerCase();
  tally.add(p.startsWith('/async-function/') ? 'routeAsync' : p.startsWith('/function/') ? 'routeFunction' : 'routeOther');
  if (/(^|\/)\.\.?(\/|$|\?)|%2e%2e/i.test(r.path)) tally.add('dotSegments');
  if (r.path.includes('%00')) tally.add('nul');
  if (r.path.includes('//')) tally.add('doubleSlash');
  if (/[\x80-\xff]|%[c-f][0-9a-f]%/i.test(r.path)) tally.add('unicodeOrLatin1Path');
  if (r.path.length > 8000) tally.add('veryLongPath');
  if (r.path.includes('?')) tally.add('query');
  const names = r.headers.map(([n]) => n.toLowerCase());
  if (new Set(names).size < names.length) tally.add('duplicateHeaders');
  if (r.headers.some(([n]) => n !== n.toLowerCase() && n !== n.toUpperCase())) tally.add('oddCase');
  if (names.includes('x-call-id')) tally.add('xCallId');
  if (names.includes('x-callback-url')) tally.add('xCallbackUrl');
  if (r.headers.length > 100) tally.add('overHeaderCount');
  if (headBytes(r) > 16_000) tally.add('overHeaderSize');
  if ((r.body?.length ?? 0) > MAX_BODY) tally.add('overBodyLimit');
  if (!METHODS.includes(r.method)) tally.add('unusualMethod');
}

// ---- raw bytes -----------------------------------------------------------------------------

/**
 * Sends bytes over a fresh TCP connection and collects everything until the server closes it
 * (every request says `Connection: close`). The client never half-closes: the server answers a
 * complete request, or refuses a malformed one, on its own.
 */
function sendRaw(url: string, bytes: Buffer): Promise<Buffer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer and no close within 10 s to ${JSON.stringify(bytes.subarray(0, 200).toString('latin1'))}`));
    }, 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    socket.write(bytes);
  });
}

const rawByte = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xff }) });
const rawBytes = (max: number) => fc.array(rawByte, { maxLength: max }).map((b) => Buffer.from(b));
/** UTF-8 (and invalid UTF-8) sent as is in the request target, which undici would refuse to send. */
const rawTarget = fc.oneof(
  // Paths node accepts: dot segments, double slashes, percent-encoding, absolute form.
  { weight: 4, arbitrary: path.map((p) => Buffer.from(p.replace(/[\x80-\xff]/g, ''), 'latin1')) },
  { weight: 4, arbitrary: fc.oneof(validAsync, validSync).map((r) => Buffer.from(r.path, 'latin1')) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('*', 'http://evil.test/async-function/work', '//async-function/work', '/async-function/work/..%2F..%2F', '/async-function/work;x=1')
      .map((s) => Buffer.from(s, 'latin1')),
  },
  // Raw UTF-8 (and raw bytes) in the target, which undici refuses to send.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('/async-function/work', '/function/work', '/async-function/', '/'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }))
      .map(([p, s]) => Buffer.from(`${p}/${s}`)),
  },
  { weight: 1, arbitrary: rawBytes(40).map((b) => Buffer.concat([Buffer.from('/async-function/'), b])) },
);
const rawRequest = fc
  .record({
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE', 'HEAD', 'OPTIONS', 'PUT') },
      { weight: 1, arbitrary: fc.oneof(fc.constantFrom('CONNECT', 'PRI', 'post', 'GET GET', ''), httpToken(8)) },
    ),
    target: rawTarget,
    version: fc.oneof(
      { weight: 8, arbitrary: fc.constant('HTTP/1.1') },
      { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 x', 'HTTP/9', 'http/1.1', '') },
    ),
    lines: fc.array(
      fc.oneof(
        { weight: 24, arbitrary: header.map(([n, v]) => Buffer.from(`${n}: ${v}`, 'latin1')) },
        { weight: 1, arbitrary: rawBytes(40) },
        {
          weight: 1,
          arbitrary: fc
            .constantFrom(
              ...[': no-name', 'X-Folded: a\r\n b', 'X-Bare-Cr: a\rb', 'X-Bare-Lf: a\nb', 'X-Nul: a\u0000b'],
              ...['X-Space : v', ' leading-space: v', 'Host: a', 'Host: b', 'X-Del: a\u007fb'],
            )
            .map((s) => Buffer.from(s, 'latin1')),
        },
      ),
      { maxLength: 8 },
    ),
  })
  .map(({ method, target, version, lines }) =>
    Buffer.concat([
      Buffer.from(`${method} `, 'latin1'),
      target,
      Buffer.from(` ${version}\r\nHost: 127.0.0.1\r\n`, 'latin1'),
      ...lines.flatMap((l) => [l, Buffer.from('\r\n')]),
      Buffer.from('Connection: close\r\n\r\n'),
    ]),
  );

// ---- the tests ---------------------------------------------------------------------------------

async function stackFor(t: Test): Promise<Stack> {
  // No worker: nothing enqueued is ever run, so fuzzed callback URLs are never called.
  return startStack(t, { worker: false });
}

/** Random and mutated requests through undici: allowed statuses, one-line refusals, no 5xx. */
async function fuzzRequests(t: Test, stack: Stack): Promise<void> {
  const run = fuzzRun(t, 'gateway, NATS up', 150);
  const tally = new Tally();
  await assertProperty(
    run,
    fc.asyncProperty(fuzzRequest, async (r) => {
      classify(r, tally);
      checkUp(r, await send(stack.gateway.url, r), tally);
    }),
    // Found by this property: a call id that is no KV key made the cancel route answer 503.
    [[{ method: 'DELETE', path: '/async-function/!', headers: [], body: undefined }], [{ method: 'DELETE', path: '/async-function/a..b', headers: [], body: undefined }]],
  );
  // Every valid invocation is accepted.
  await assertProperty(
    { ...run, numRuns: Math.max(20, Math.round(run.numRuns / 5)) },
    fc.asyncProperty(validAsync, async (r) => {
      tally.add('validAsync');
      const a = await send(stack.gateway.url, r);
      assert.ok(!('reset' in a), 'answered');
      assert.equal(a.status, 202, `a valid invocation is accepted: ${a.body}`);
    }),
    // 15 000 bytes of U+00A0 (obs-text, 1 byte on the wire): escaped whole, the envelope's headers
    // grew past JetStream's 64 KiB limit and the gateway answered 503.
    [[{ method: 'POST', path: '/async-function/work', headers: [['x-nbsp', '\u00a0'.repeat(15_000)]], body: new Uint8Array(0) }]],
  );
  const health = await request(`${stack.gateway.url}/healthz`);
  t.equal(health.statusCode, 200, 'the gateway still serves after the fuzz');
  await health.body.dump();
  tally.print(t, 'gateway requests (NATS up)');
}

/** Raw request bytes over TCP: an answer in the allowed set for each, never a hang. */
async function fuzzRawRequests(t: Test, stack: Stack): Promise<void> {
  const run = fuzzRun(t, 'gateway, raw bytes', 100);
  const tally = new Tally();
  await assertProperty(
    run,
    fc.asyncProperty(rawRequest, async (bytes) => {
      tally.add('cases');
      const answer = await sendRaw(stack.gateway.url, bytes);
      const text = answer.toString('latin1');
      if (bytes.toString('latin1').startsWith('CONNECT ')) tally.add('connect');
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(text)?.[1];
      assert.ok(status !== undefined, `an HTTP answer, got ${JSON.stringify(text.slice(0, 200))}`);
      tally.add(`status${status}`);
      if (process.env.FUZZ_VERBOSE && Number(status) >= 400) {
        const start = text.indexOf('\r\n\r\n') + 4;
        tally.add(
          `${status} ${text
            .slice(start, start + 50)
            .replace(/[,=\n]/g, ' ')
            .trim()}`,
        );
      }
      assert.ok(ALLOWED_UP.has(Number(status)), `status ${status}: ${text.slice(0, 300)}`);
      if (Number(status) >= 400 && !bytes.toString('latin1').startsWith('HEAD ')) {
        // The first answer only: a blank line among the fields ends the request early, and the rest
        // arrives as a second, pipelined request with an answer of its own.
        const headEnd = text.indexOf('\r\n\r\n');
        assert.match(
          text.slice(0, headEnd),
          /\r\nx-asyncfn-error: ASYNCFN_ERR_[A-Z_]+\r?(\n|$)/i,
          `a ${status} carries X-Asyncfn-Error: ${JSON.stringify(text.slice(0, 300))}`,
        );
        const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, headEnd))?.[1];
        assert.ok(length !== undefined, `a ${status} with a Content-Length: ${JSON.stringify(text.slice(0, 300))}`);
        const bodyText = text.slice(headEnd + 4, headEnd + 4 + Number(length));
        assert.match(bodyText, /^[^\n]+\n?$/, `a one-line reason, got ${JSON.stringify(bodyText.slice(0, 200))}`);
      }
    }),
  );
  const health = await request(`${stack.gateway.url}/healthz`);
  t.equal(health.statusCode, 200, 'the gateway still serves after the fuzz');
  await health.body.dump();
  tally.print(t, 'raw requests');
}

t.test('with NATS up', async (t) => {
  const stack = await stackFor(t);
  t.equal(stack.config.gateway.maxBodyBytes, MAX_BODY, 'the body limit the generators aim at');
  t.test('random requests: allowed statuses, one-line refusals, no 5xx', (t) => fuzzRequests(t, stack));
  t.test('raw request bytes (what no HTTP client sends): an answer in the allowed set, never a hang', (t) => fuzzRawRequests(t, stack));
});

t.test('with nats-server stopped: every answer is 503 with Retry-After, a 4xx, or from a route that needs no NATS', async (t) => {
  const run = fuzzRun(t, 'gateway, NATS down', 80);
  const stack = await stackFor(t);
  await stack.nats.stop();
  // The gateway notices the disconnect on its own; only /healthz shows it from outside.
  await eventually(async () => {
    const res = await request(`${stack.gateway.url}/healthz`);
    await res.body.dump();
    return res.statusCode === 503;
  }, 'the gateway to report NATS down');
  const tally = new Tally();
  const check = (r: FuzzRequest, a: Answer | { reset: string }): void => {
    if ('reset' in a) return checkReset(r, a, tally);
    tally.add(`status${a.status}`);
    // A 202 now would be a promise the gateway cannot keep.
    assert.notEqual(a.status, 202, `nothing is accepted while NATS is down: ${r.method} ${r.path.slice(0, 100)}`);
    if (a.status === 503) {
      assert.equal(a.headers['retry-after'], '1', '503 carries Retry-After');
      checkRefusal(r, a);
      return;
    }
    assert.ok(a.status < 500, `no 5xx but 503: got ${a.status} ${a.body.slice(0, 300)}`);
    assert.ok(ALLOWED_UP.has(a.status), `status ${a.status}: ${a.body.slice(0, 300)}`);
    if (a.status >= 400) checkRefusal(r, a);
    else assert.ok(!r.path.toLowerCase().startsWith('/async-function/'), `${a.status} from /async-function/ while NATS is down`);
  };
  await assertProperty(
    run,
    fc.asyncProperty(fc.oneof(fuzzRequest, validAsync), async (r) => {
      classify(r, tally);
      check(r, await send(stack.gateway.url, r));
    }),
  );
  // The valid ones in particular: refused with 503, never accepted.
  await assertProperty(
    { ...run, numRuns: Math.max(20, Math.round(run.numRuns / 5)) },
    fc.asyncProperty(validAsync, async (r) => {
      tally.add('validAsyncWhileDown');
      const a = await send(stack.gateway.url, r);
      assert.ok(!('reset' in a), 'answered');
      assert.equal(a.status, 503, `a valid invocation is refused with 503 while NATS is down: ${a.body}`);
      assert.equal(a.headers['retry-after'], '1');
    }),
  );
  tally.print(t, 'gateway requests (NATS down)');
});

// ---- path suffixes ---------------------------------------------------------------------------

/** Pieces a hostile suffix is built from: dots, encoded dots and slashes in every case and depth. */
const HOSTILE_PIECES = [
  ...['.', '..', '%2e', '%2E', '.%2e', '%2e.', '%252e', '%25252e', '%2f', '%2F', '%252f', '%5c', '%5C', '%255c'],
  ...['%00', '%0a', '%zz', '%', ';x', '%c0%ae'],
];
/** Pieces that are harmless alone, and words of the paths an escape would aim at. */
const PLAIN_PIECES = ['a', 'b', 'work', 'other', 'system', 'functions', '~', '-', '', '%20', '%25', '%2525', '%C3%A9'];
const suffixSegment = fc
  .array(fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...HOSTILE_PIECES) }, { weight: 6, arbitrary: fc.constantFrom(...PLAIN_PIECES) }), {
    minLength: 1,
    maxLength: 4,
  })
  .map((pieces) => pieces.join(''));
const suffix = fc.array(suffixSegment, { minLength: 1, maxLength: 5 }).map((segments) => segments.map((s) => `/${s}`).join(''));
const suffixQuery = fc.constantFrom('', '?a=../..', '?x=%2e%2e&y=1');

/** Where the function "work" lives on the function host: anything it receives must be under it. */
const WORK_BASE = '/fns/work';

function isUnderWork(path: string): boolean {
  const pathname = path.split('?')[0]!;
  return pathname === WORK_BASE || pathname.startsWith(`${WORK_BASE}/`);
}

/** A path suffix is refused with 400 and a reason, or the function receives it, byte for byte, under its base path. */
function checkSuffixAnswer(a: Answer | { reset: string }, sent: string, received: string | undefined, tally: Tally): void {
  assert.ok(!('reset' in a), 'answered');
  if (a.status === 400) {
    tally.add('refused');
    assert.match(String(a.headers['x-asyncfn-error']), /^ASYNCFN_ERR_(PATH_REFUSED|BAD_REQUEST)$/);
    assert.match(a.body, /^[^\n]+\n$/, 'one line');
    return;
  }
  tally.add('accepted');
  assert.ok(received !== undefined, `status ${a.status}: ${a.body.slice(0, 200)}`);
  assert.ok(isUnderWork(received), `the function received ${received}, outside ${WORK_BASE}`);
  assert.equal(received, `${WORK_BASE}${sent}`, 'the suffix arrives as sent');
}

t.test('path suffixes: refused with 400, or received under the function base path, never outside', async (t) => {
  const nats = await startNatsServer(t);
  // One host for every function: a request escaping "work" would show up here under another path.
  const host = await startFunctionServer(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(req.url);
  });
  const sink = await startCallbackSink(t);
  const resolver = staticResolver({ work: { url: `${host.url}${WORK_BASE}` }, other: { url: `${host.url}/fns/other` } }, 'openfaas-fn');
  const config = configFor(nats.url);
  const gateway = await startTestGateway(t, config, resolver);
  await startTestWorker(t, config, resolver);
  const tally = new Tally();

  const run = fuzzRun(t, 'path suffixes, sync', 200);
  await assertProperty(
    run,
    fc.asyncProperty(suffix, suffixQuery, fc.constantFrom('GET', 'POST', 'DELETE'), async (s, q, method) => {
      const a = await send(gateway.url, { method, path: `/function/work${s}${q}`, headers: [], body: method === 'POST' ? new Uint8Array([0x48, 0x69]) : undefined });
      checkSuffixAnswer(a, `${s}${q}`, 'status' in a && a.status === 200 ? a.body : undefined, tally);
    }),
    [
      ['/..', '', 'GET'],
      ['/%2e%2e/other', '', 'GET'],
      ['/a%2f..%2f..%2fother', '?a=../..', 'DELETE'],
      ['/%252e%252e/%252e%252e/system', '', 'GET'],
    ],
  );

  const asyncRun = { ...run, numRuns: Math.max(20, Math.round(run.numRuns / 4)) };
  await assertProperty(
    asyncRun,
    fc.asyncProperty(suffix, suffixQuery, async (s, q) => {
      const a = await send(gateway.url, {
        method: 'POST',
        path: `/async-function/work${s}${q}`,
        headers: [['x-callback-url', sink.url]],
        body: new Uint8Array([0x48, 0x69]),
      });
      assert.ok(!('reset' in a), 'answered');
      let received: string | undefined;
      if (a.status === 202) {
        const callback = await sink.waitForCallId(String(a.headers['x-call-id']), 15_000);
        assert.equal(callback.headers['x-function-name'], 'work', 'the callback names the function called');
        received = callback.body.toString();
      }
      checkSuffixAnswer(a.status === 202 ? { ...a, status: 200 } : a, `${s}${q}`, received, tally);
    }),
    [['/../other', '']],
  );

  for (const r of host.requests) assert.ok(isUnderWork(r.url), `${r.method} ${r.url} reached the function host outside ${WORK_BASE}`);
  t.ok(tally.get('refused') > 0 && tally.get('accepted') > 0, 'both refused and accepted suffixes were generated');
  t.pass(`${host.requests.length} requests reached the function host, all under ${WORK_BASE}`);
  tally.print(t, 'path suffixes');
});
