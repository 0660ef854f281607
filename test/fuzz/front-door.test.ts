import fc from 'fast-check';
import t from 'tap';
import { letServerRead, post, startFrontDoor } from '../helpers/front-door.js';
import { assertProperty, fuzzRun, Tally } from '../helpers/fuzz.js';

/**
 * The front door reads a connection's bytes in whatever pieces TCP delivers them: a head's blank
 * line split between two reads, a body in several, the next request behind the end of a body.
 * Random requests, pipelined on one connection and written in random pieces (each read by the
 * server before the next is written), must each be answered once, in order, with the
 * body it sent; a request of another kind among them hands the rest of the connection to
 * node:http, which must answer it and everything after it, in order too.
 */

const text = fc.string({ unit: fc.constantFrom(...'abcxyz019-_.~'.split('')), maxLength: 300 });
const request = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('async' as const), name: fc.constantFrom('a', 'fn', 'x.ns'), body: text }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('other' as const), name: fc.constantFrom('/healthz', '/function/f', '/async-function/chunked'), body: text }) },
);

function bytesOf(r: { kind: 'async' | 'other'; name: string; body: string }, index: number): string {
  if (r.kind === 'async') return post(`/async-function/${r.name}?i=${index}`, r.body, index % 3 === 0 ? 'X-Callback-Url: http://127.0.0.1:9/cb\r\n' : '');
  if (r.name === '/async-function/chunked') {
    const chunk = r.body === '' ? '' : `${Buffer.byteLength(r.body).toString(16)}\r\n${r.body}\r\n`;
    return `POST ${r.name}?i=${index} HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}0\r\n\r\n`;
  }
  return post(`${r.name}?i=${index}`, r.body);
}

t.test('pipelined requests in random pieces: each answered once, in order, with its body', async (t) => {
  const run = fuzzRun(t, 'front door: pipelined requests in pieces', 150);
  const tally = new Tally();
  const { open } = await startFrontDoor(t);
  await assertProperty(
    run,
    fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 10 }), async (requests, cuts) => {
      const bytes = Buffer.from(requests.map(bytesOf).join(''));
      const points = [...new Set(cuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
      const c = await open();
      let from = 0;
      for (const point of [...points, bytes.length]) {
        if (point > from) {
          await c.write(bytes.subarray(from, point));
          await letServerRead(); // this piece, before the next one is written
        }
        from = point;
      }
      tally.add('requests', requests.length);
      tally.add('pieces', points.length + 1);
      let handedOver = false;
      for (const [i, r] of requests.entries()) {
        const answer = await c.next();
        if (r.kind === 'other') handedOver = true;
        // Before the first request of another kind, the front door answers; after it, node:http.
        const expected = handedOver
          ? { status: 200, body: `node POST ${r.kind === 'async' ? `/async-function/${r.name}` : r.name}?i=${i} ${r.body}` }
          : { status: 202, body: r.body };
        const got = handedOver ? { status: answer?.status, body: answer?.body } : { status: answer?.status, body: answer?.header('x-body') };
        if (got.status !== expected.status || got.body !== expected.body) {
          t.same(got, expected, `answer ${i} of ${requests.length}`);
          return false;
        }
      }
      c.socket.destroy();
      return true;
    }),
    [],
    { shrink: true },
  );
  tally.print(t, 'written');
  t.pass(`${run.numRuns} connections answered in order`);
});
