import { headers as natsHeaders } from '@nats-io/nats-core';
import t from 'tap';
import {
  bodyView,
  countLine,
  ERROR_COLUMN_CHARS,
  formatShow,
  formatTable,
  headerPairs,
  isoTime,
  listJson,
  progressReporter,
  showJson,
  truncate,
} from '../../../src/cli/dlq/format.js';
import type { DeadLetter } from '../../../src/queue/dead-letter.js';
import type { Invocation } from '../../../src/queue/envelope.js';

const AT = Date.UTC(2025, 0, 15, 12, 0, 0);
const invocation: Invocation = {
  callId: 'call-1',
  functionName: 'echo',
  namespace: 'openfaas-fn',
  method: 'PUT',
  path: '/a',
  query: 'q=1',
  headers: [['content-type', 'text/plain']],
  body: new TextEncoder().encode('hi\nthere'),
  callbackUrl: 'http://cb.test/',
  enqueuedAtMs: AT - 1000,
};
const ok: DeadLetter = { seq: 12, reason: 'retriesExhausted', queue: 'faas-request', attempts: 3, status: 502, error: 'HTTP 502', atMs: AT, invocation };
const poison: DeadLetter = { seq: 3, reason: 'poison', queue: 'q', attempts: 0, atMs: AT, decodeError: 'missing header Asyncfn-Version' };

t.test('table: padded columns, no trailing spaces, dashes for unknowns, long errors truncated', async (t) => {
  const long: DeadLetter = { ...ok, seq: 100, error: 'e'.repeat(200), status: undefined };
  const lines = formatTable([ok, poison, long]);
  t.equal(lines.length, 4);
  t.equal(lines[0], 'SEQ  TIME                      QUEUE         FUNCTION  REASON            ATTEMPTS  STATUS  CALL-ID  ERROR');
  t.equal(lines[1], '12   2025-01-15T12:00:00.000Z  faas-request  echo      retriesExhausted  3         502     call-1   HTTP 502');
  t.equal(lines[2], '3    2025-01-15T12:00:00.000Z  q             -         poison            0         -       -        undecodable: missing header Asyncfn-Version');
  t.equal(lines[3]!.split(/\s{2,}/).at(-1), `${'e'.repeat(ERROR_COLUMN_CHARS - 1)}…`);
  for (const line of lines) t.notMatch(line, /\s$/);
});

t.test('count line', async (t) => {
  t.equal(countLine(0), '0 dead letters');
  t.equal(countLine(1), '1 dead letter');
  t.equal(countLine(2), '2 dead letters');
});

t.test('list JSON keeps every key', async (t) => {
  t.same(listJson(poison), {
    seq: 3,
    time: '2025-01-15T12:00:00.000Z',
    atMs: AT,
    queue: 'q',
    function: null,
    namespace: null,
    reason: 'poison',
    attempts: 0,
    status: null,
    callId: null,
    error: null,
    decodeError: 'missing header Asyncfn-Version',
  });
});

t.test('bodies: printable UTF-8 as text, anything else as base64 with its size', async (t) => {
  t.same(bodyView(new TextEncoder().encode('héllo\tworld\r\n')), { encoding: 'utf8', bytes: 14, data: 'héllo\tworld\r\n' });
  t.same(bodyView(new Uint8Array()), { encoding: 'utf8', bytes: 0, data: '' });
  t.same(bodyView(new Uint8Array([0xff, 0xfe])), { encoding: 'base64', bytes: 2, data: '//4=' }, 'invalid UTF-8');
  t.same(bodyView(new Uint8Array([0x61, 0x00, 0x62])), { encoding: 'base64', bytes: 3, data: 'YQBi' }, 'NUL is not printable');
  t.same(bodyView(new Uint8Array([0x1b, 0x5b])), { encoding: 'base64', bytes: 2, data: 'G1s=' }, 'escape sequences are not printed');
});

t.test('show: the request for an envelope, raw headers for poison', async (t) => {
  const view = { letter: ok, subject: 'asyncfn.dead-letters.faas-request', headers: undefined, data: invocation.body, storedAtMs: AT + 5 };
  const lines = formatShow(view);
  t.ok(lines.includes('seq:            12'));
  t.ok(lines.includes('stored at:      2025-01-15T12:00:00.005Z'));
  t.ok(lines.includes('function:       echo.openfaas-fn'));
  t.ok(lines.includes('  method:       PUT'));
  t.ok(lines.includes('  callback url: http://cb.test/'));
  t.ok(lines.includes('    content-type: text/plain'));
  t.same(lines.slice(-2), ['body (8 bytes, text):', 'hi\nthere']);

  const h = natsHeaders();
  h.set('X-Junk', '1');
  h.append('X-Junk', '2');
  const raw = formatShow({ letter: poison, subject: 'asyncfn.dead-letters.q', headers: h, data: new Uint8Array(), storedAtMs: AT });
  t.ok(raw.includes('decode error:   missing header Asyncfn-Version'));
  t.same(raw.slice(-4), ['raw headers:', '  X-Junk: 1', '  X-Junk: 2', 'body: (empty)']);
  t.same(headerPairs(h), [
    ['X-Junk', '1'],
    ['X-Junk', '2'],
  ]);

  const json = showJson(view);
  t.match(json, { seq: 12, callId: 'call-1', request: { method: 'PUT', callbackUrl: 'http://cb.test/', body: { encoding: 'utf8', bytes: 8 } } });
  t.same(showJson({ letter: poison, subject: 's', headers: h, data: new Uint8Array([0]), storedAtMs: AT }).rawHeaders, [
    ['X-Junk', '1'],
    ['X-Junk', '2'],
  ]);
});

t.test('progress: every tenth above 100, nothing at or below', async (t) => {
  const lines: string[] = [];
  const report = progressReporter('replayed', 3000, (l) => lines.push(l));
  for (let i = 1; i <= 3000; i++) report(i);
  t.same(
    lines,
    Array.from({ length: 10 }, (_, i) => `replayed ${(i + 1) * 300}/3000`),
  );

  const odd: string[] = [];
  const reportOdd = progressReporter('purged', 101, (l) => odd.push(l));
  for (let i = 1; i <= 101; i++) reportOdd(i);
  t.equal(odd.length, 10);
  t.equal(odd.at(-1), 'purged 101/101');

  const none: string[] = [];
  const quiet = progressReporter('replayed', 100, (l) => none.push(l));
  for (let i = 1; i <= 100; i++) quiet(i);
  t.same(none, []);
});

t.test('time and truncation helpers', async (t) => {
  t.equal(isoTime(AT), '2025-01-15T12:00:00.000Z');
  t.equal(isoTime(0), '-');
  t.equal(isoTime(Number.NaN), '-');
  t.equal(truncate('abc', 3), 'abc');
  t.equal(truncate('abcd', 3), 'ab…');
});
