import t from 'tap';
import { applySettings, createChaos, DEFAULT_CHAOS } from '../../../src/samples/functions/chaos.js';
import { sleep } from '../../../src/samples/functions/sleep.js';
import type { SampleRequest } from '../../../src/samples/index.js';

const request = (query: string, signal: AbortSignal): SampleRequest => ({
  method: 'GET',
  pathSuffix: '',
  query,
  headers: {},
  body: Buffer.alloc(0),
  signal,
});

/** A call to chaos as the sample server makes it. */
const call = (fn: ReturnType<typeof createChaos>, method: string, pathSuffix = '', body = '', headers: Record<string, string> = {}, query = '') =>
  fn.handle({ method, pathSuffix, query, headers, body: Buffer.from(body), signal: new AbortController().signal });

// The server aborts the signal when the client disconnects; the timers must stop then, or an
// abandoned one-hour sleep would pin its memory (and the process) for an hour.
t.test('sleep stops its timer when the client goes away', async (t) => {
  const ac = new AbortController();
  const pending = sleep.handle(request('duration=1h', ac.signal));
  ac.abort();
  await t.rejects(pending, { name: 'AbortError' });
});

t.test('chaos stops its delay when the client goes away', async (t) => {
  const ac = new AbortController();
  const pending = createChaos().handle(request('delay=1h&status=500', ac.signal));
  ac.abort();
  await t.rejects(pending, { name: 'AbortError' });
});

t.test('sleep with duration 0 answers at once', async (t) => {
  const zero = await sleep.handle(request('duration=0', new AbortController().signal));
  t.same(zero, { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'slept 0ms\n' });
});

// OpenFaaS's retries walkthrough (docs.openfaas.com/openfaas-pro/retries, alexellis/chaos-fn):
// POST /set a canned response, then every call answers it until the next /set.
t.test('chaos /set chooses what later calls answer, as chaos-fn does', async (t) => {
  const chaos = createChaos();
  t.same(await call(chaos, 'POST'), { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '' }, 'before /set: 200, empty');

  // The walkthrough's exact body, without a JSON Content-Type (curl -d sends form-urlencoded).
  const set = await call(chaos, 'POST', '/set', '\n{\t"status": 500,\n\t"delay": "1ms",\n    "body": "1 second delay, then 500"}\n');
  t.equal(set.status, 202, '/set answers 202 Accepted');
  t.same(await call(chaos, 'GET'), { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '1 second delay, then 500' });
  t.equal((await call(chaos, 'POST', '', 'some payload', { 'content-type': 'text/plain' })).status, 500, 'whatever the call sends');

  t.equal((await call(chaos, 'POST', '/set', '{"status": 200}', { 'content-type': 'application/json' })).status, 202);
  const fixed = await call(chaos, 'POST');
  t.same([fixed.status, fixed.body], [200, '1 second delay, then 500'], 'fields left out keep their value');

  const got = await call(chaos, 'GET', '/get');
  t.equal(got.status, 200);
  t.same(JSON.parse(String(got.body)), { status: 200, body: '1 second delay, then 500', delay: '1ms' }, '/get answers the canned settings');
  t.same(JSON.parse(String((await call(createChaos(), 'GET', '/get')).body)), { status: 200, body: '', delay: '0s' }, 'Go prints no delay as 0s');

  const perCall = await call(chaos, 'GET', '', '', {}, 'status=418&body=teapot');
  t.same([perCall.status, perCall.body], [418, 'teapot'], 'a call can still choose its own answer with the query');
  t.equal((await call(chaos, 'GET')).status, 200, 'which does not change the canned one');
});

t.test('chaos /set refuses bad settings and keeps the canned response', async (t) => {
  const chaos = createChaos();
  await call(chaos, 'POST', '/set', '{"status":503}');
  for (const [body, reason] of [
    ['{"status": 42}', /^invalid status 42/],
    ['{"delay": "soon"}', /^invalid delay "soon"/],
    ['{"stauts": 500}', /^unknown field "stauts"/],
    ['not json', /^invalid JSON body/],
    ['[500]', /^invalid JSON body: expected an object/],
  ] as const) {
    const res = await call(chaos, 'POST', '/set', body);
    t.equal(res.status, 400, body);
    t.match(String(res.body), reason);
  }
  t.equal((await call(chaos, 'GET')).status, 503, 'the canned response is unchanged');
  const wrongMethod = await call(chaos, 'GET', '/set');
  t.same([wrongMethod.status, wrongMethod.headers?.allow], [405, 'POST'], 'GET /set is refused');
  t.same([(await call(chaos, 'POST', '/get')).status, (await call(chaos, 'POST', '/get')).headers?.allow], [405, 'GET']);
});

t.test('each chaos has its own canned response', async (t) => {
  const a = createChaos();
  const b = createChaos();
  await call(a, 'POST', '/set', '{"status":500}');
  t.equal((await call(a, 'GET')).status, 500);
  t.equal((await call(b, 'GET')).status, 200);
});

t.test('applySettings checks and merges fields', async (t) => {
  t.same(applySettings(DEFAULT_CHAOS, {}), { ok: true, settings: DEFAULT_CHAOS });
  t.same(applySettings(DEFAULT_CHAOS, { status: '502', delay: 1.5, body: 'x' }), { ok: true, settings: { status: 502, delayMs: 1500, body: 'x' } });
  t.same(applySettings({ status: 500, delayMs: 10, body: 'b' }, { delay: '2s' }), { ok: true, settings: { status: 500, delayMs: 2000, body: 'b' } });
  t.match(applySettings(DEFAULT_CHAOS, { status: 101 }), { ok: false, problem: /^invalid status 101/ });
  t.match(applySettings(DEFAULT_CHAOS, { body: 1 }), { ok: false, problem: /^invalid body 1/ });
});
