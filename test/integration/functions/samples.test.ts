import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { request } from 'undici';
import { startSampleFunctions } from '../../../src/samples/index.js';

const samples = await startSampleFunctions({ port: 0 });
t.teardown(() => samples.close());
const { functions } = samples;

/** Sends a request and reads the whole answer. */
async function call(url: string, opts: Parameters<typeof request>[1] = {}) {
  const started = performance.now();
  const res = await request(url, opts);
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8'), ms: performance.now() - started };
}

t.test('each function has a base URL under the server URL', async (t) => {
  t.match(samples.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.same(Object.keys(functions).sort(), ['chaos', 'echo', 'figlet', 'sleep']);
  t.equal(functions['echo']?.url, `${samples.url}/echo`);
});

t.test('echo returns the body byte for byte with its Content-Type and X-Echo-* headers', async (t) => {
  const payload = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(64 * 1024)]);
  const res = await call(`${functions['echo']?.url}/a/b%20c?x=1&y=%20&flag`, {
    method: 'PUT',
    headers: { 'content-type': 'application/x-custom' },
    body: payload,
  });
  t.equal(res.status, 200);
  t.ok(res.body.equals(payload), 'binary body round trip');
  t.equal(res.headers['content-type'], 'application/x-custom');
  t.equal(res.headers['x-echo-method'], 'PUT');
  t.equal(res.headers['x-echo-path'], '/a/b%20c');
  t.equal(res.headers['x-echo-query'], 'x=1&y=%20&flag');
});

t.test('echo defaults to application/octet-stream and an empty path and query', async (t) => {
  const res = await call(functions['echo']?.url ?? '', { method: 'POST', body: Buffer.from([0, 1, 2]) });
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'application/octet-stream');
  t.equal(res.headers['x-echo-path'], '');
  t.equal(res.headers['x-echo-query'], '');
  t.same([...res.body], [0, 1, 2]);
});

t.test('echo refuses a body over 1 MiB with 413', async (t) => {
  const ok = await call(functions['echo']?.url ?? '', { method: 'POST', body: Buffer.alloc(1024 * 1024, 1) });
  t.equal(ok.status, 200);
  t.equal(ok.body.length, 1024 * 1024);
  const tooBig = await call(functions['echo']?.url ?? '', { method: 'POST', body: Buffer.alloc(1024 * 1024 + 1, 1) });
  t.equal(tooBig.status, 413);
  t.match(tooBig.text, /larger than 1048576 bytes/);
});

t.test('sleep waits the requested duration', async (t) => {
  const res = await call(`${functions['sleep']?.url}?duration=50ms`);
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
  t.equal(res.text, 'slept 50ms\n');
  t.ok(res.ms >= 45, `took ${res.ms.toFixed(1)} ms`);
  t.equal((await call(`${functions['sleep']?.url}?duration=0.02`)).text, 'slept 20ms\n', 'a bare number is seconds');
});

t.test('sleep rejects a bad or too long duration with a one-line 400', async (t) => {
  const bad = await call(`${functions['sleep']?.url}?duration=soon`);
  t.equal(bad.status, 400);
  t.equal(bad.text, 'invalid duration "soon": expected e.g. 2s, 500ms, 1m or a number of seconds\n');
  const long = await call(`${functions['sleep']?.url}?duration=2h`);
  t.equal(long.status, 400);
  t.equal(long.text, 'duration "2h" exceeds the maximum of 1h\n');
});

t.test('chaos answers the chosen status and body after the chosen delay', async (t) => {
  const res = await call(`${functions['chaos']?.url}?status=503&delay=50ms&body=oops`);
  t.equal(res.status, 503);
  t.equal(res.text, 'oops');
  t.ok(res.ms >= 45, `took ${res.ms.toFixed(1)} ms`);

  const json = await call(`${functions['chaos']?.url}?status=500`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ status: 429, delay: '10ms', body: 'slow down' }),
  });
  t.equal(json.status, 429, 'the JSON body wins over the query');
  t.equal(json.text, 'slow down');

  const plain = await call(functions['chaos']?.url ?? '');
  t.equal(plain.status, 200);
  t.equal(plain.text, '');
});

t.test('chaos rejects bad settings with a one-line 400', async (t) => {
  const cases: Array<[query: string, body: string | undefined, reason: RegExp]> = [
    ['status=abc', undefined, /^invalid status "abc": expected an integer from 200 to 599\n$/],
    ['status=700', undefined, /^invalid status "700"/],
    ['status=101', undefined, /^invalid status "101"/],
    ['delay=later', undefined, /^invalid delay "later"/],
    ['delay=3h', undefined, /^delay "3h" exceeds the maximum of 1h\n$/],
    ['', '{not json', /^invalid JSON body: /],
    ['', '[1]', /^invalid JSON body: expected an object/],
    ['', '{"stauts":500}', /^unknown field "stauts"/],
    ['', '{"status":"x"}', /^invalid status "x"/],
    ['', '{"delay":true}', /^invalid delay true/],
    ['', '{"body":1}', /^invalid body 1: expected a string/],
  ];
  for (const [query, body, reason] of cases) {
    const res = await call(`${functions['chaos']?.url}?${query}`, {
      method: 'POST',
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body }),
    });
    t.equal(res.status, 400, `${query} ${body ?? ''}`);
    t.match(res.text, reason);
    t.equal(res.text.split('\n').length, 2, 'one line');
  }
});

t.test('figlet renders the body as multi-line ASCII art', async (t) => {
  const res = await call(functions['figlet']?.url ?? '', { method: 'POST', body: 'hello' });
  t.equal(res.status, 200);
  t.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
  t.ok(res.text.split('\n').length > 3, res.text);
  t.not(res.text.trim(), 'hello');

  const empty = await call(functions['figlet']?.url ?? '', { method: 'POST' });
  t.equal(empty.status, 200);
  t.ok(empty.text.split('\n').length > 3, 'default text is rendered');

  const tooLong = await call(functions['figlet']?.url ?? '', { method: 'POST', body: 'x'.repeat(1025) });
  t.equal(tooLong.status, 413);
});

t.test('an unknown function is 404 "function not found"', async (t) => {
  for (const path of ['/nope', '/', '/nope/echo', '/echoo']) {
    const res = await call(`${samples.url}${path}`, { method: 'POST', body: 'x' });
    t.equal(res.status, 404, path);
    t.equal(res.text, 'function not found\n');
    t.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
  }
});

t.test('a function that fails after reading its body answers 500 with the error, not silence', async (t) => {
  const failing = await startSampleFunctions({
    samples: [
      {
        name: 'broken',
        maxBodyBytes: 1024,
        handle: () => Promise.reject(new Error('fonts not found')),
      },
    ],
  });
  t.teardown(() => failing.close());
  const res = await call(`${failing.url}/broken`, { method: 'POST', body: 'read to the end first', headersTimeout: 10_000 });
  t.equal(res.status, 500);
  t.equal(res.text, 'internal error: fonts not found\n');
});
