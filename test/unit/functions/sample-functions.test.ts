import t from 'tap';
import { chaos } from '../../../src/samples/functions/chaos.js';
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
  const pending = chaos.handle(request('delay=1h&status=500', ac.signal));
  ac.abort();
  await t.rejects(pending, { name: 'AbortError' });
});

t.test('sleep with duration 0 answers at once', async (t) => {
  const zero = await sleep.handle(request('duration=0', new AbortController().signal));
  t.same(zero, { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'slept 0ms\n' });
});
