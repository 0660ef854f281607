import t from 'tap';
import {
  filterSubject,
  hasCriteria,
  isQueueOnly,
  matchesFilter,
  parseFilter,
  parseSeq,
  parseTimeBound,
  type DeadLetterFilter,
} from '../../../src/dead-letters/filters.js';
import type { DeadLetter } from '../../../src/queue/dead-letter.js';
import type { Invocation } from '../../../src/queue/envelope.js';
import { testInvocation } from '../../helpers/invocations.js';

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const MINUTE = 60_000;

const invocation: Invocation = testInvocation({ callId: 'call-1', functionName: 'echo', callbackUrl: undefined, enqueuedAtMs: NOW - 60 * MINUTE });
const letter = (over: Partial<DeadLetter> = {}): DeadLetter => ({
  seq: 7,
  reason: 'retriesExhausted',
  queue: 'faas-request',
  attempts: 3,
  atMs: NOW - 10 * MINUTE,
  invocation,
  ...over,
});
const filter = (over: Partial<DeadLetterFilter> = {}): DeadLetterFilter => ({ seqs: [], ...over });

t.test('parseTimeBound: durations mean that long ago; RFC 3339 is absolute', async (t) => {
  t.equal(parseTimeBound('1h', NOW), NOW - 60 * MINUTE);
  t.equal(parseTimeBound('30m', NOW), NOW - 30 * MINUTE);
  t.equal(parseTimeBound('1h30m', NOW), NOW - 90 * MINUTE);
  t.equal(parseTimeBound('90', NOW), NOW - 90_000, 'a bare number is seconds, as everywhere in asyncfn');
  t.equal(parseTimeBound('2025-01-15T11:00:00Z', NOW), NOW - 60 * MINUTE);
  t.equal(parseTimeBound('2025-01-15T13:00:00+02:00', NOW), NOW - 60 * MINUTE, 'offsets count');
  t.equal(parseTimeBound('2025-01-15t11:00:00.500z', NOW), NOW - 60 * MINUTE + 500, 'lower-case t/z and fractions');
  for (const bad of ['yesterday', '', '-1h', '1d', '2025-01-15', '2025-01-15T11:00:00', '2025-13-45T00:00:00Z', '1h ago']) {
    t.equal(parseTimeBound(bad, NOW), undefined, `"${bad}" is rejected`);
  }
});

t.test('parseSeq: positive safe integers only', async (t) => {
  t.equal(parseSeq('1'), 1);
  t.equal(parseSeq('123456'), 123456);
  for (const bad of ['0', '-1', '1.5', 'abc', '', '01', '1e3', '99999999999999999999']) t.equal(parseSeq(bad), undefined, `"${bad}"`);
});

t.test('parseFilter: valid options become a filter', async (t) => {
  const parsed = parseFilter({ function: 'echo', queue: 'faas-request', reason: 'expired', since: '1h', until: '2025-01-15T11:30:00Z' }, ['5', '3', '5'], NOW);
  t.same(parsed, {
    ok: true,
    value: {
      functionName: 'echo',
      queue: 'faas-request',
      reason: 'expired',
      sinceMs: NOW - 60 * MINUTE,
      untilMs: NOW - 30 * MINUTE,
      seqs: [3, 5],
    },
  });
  t.same(parseFilter({}, [], NOW), {
    ok: true,
    value: { functionName: undefined, queue: undefined, reason: undefined, sinceMs: undefined, untilMs: undefined, seqs: [] },
  });
});

t.test('parseFilter: each bad value is one message naming the option', async (t) => {
  const cases: Array<[Parameters<typeof parseFilter>[0], string[], RegExp]> = [
    [{ reason: 'nope' }, [], /^--reason "nope" is not one of retriesExhausted, nonRetryable, expired, poison, callbackFailed$/],
    [{ queue: 'a.b' }, [], /^--queue "a\.b"/],
    [{ queue: 'faas-*' }, [], /^--queue/],
    [{ function: ' ' }, [], /^--function must not be empty$/],
    [{ since: 'yesterday' }, [], /^--since "yesterday" is neither a duration/],
    [{ until: '2025-02-30' }, [], /^--until "2025-02-30"/],
    [{ since: '5m', until: '1h' }, [], /^--since is later than --until$/],
    [{}, ['1', 'x'], /^"x" is not a dead-letter sequence number$/],
  ];
  for (const [opts, positionals, message] of cases) {
    const parsed = parseFilter(opts, positionals, NOW);
    t.equal(parsed.ok, false, JSON.stringify([opts, positionals]));
    if (!parsed.ok) {
      t.match(parsed.error, message);
      t.notMatch(parsed.error, /\n/, 'one line');
    }
  }
});

t.test('matchesFilter: every criterion must match', async (t) => {
  t.ok(matchesFilter(letter(), filter()), 'an empty filter matches everything');
  t.ok(matchesFilter(letter(), filter({ seqs: [1, 7] })));
  t.notOk(matchesFilter(letter(), filter({ seqs: [1, 8] })));
  t.ok(matchesFilter(letter(), filter({ queue: 'faas-request' })));
  t.notOk(matchesFilter(letter(), filter({ queue: 'slow' })));
  t.ok(matchesFilter(letter(), filter({ reason: 'retriesExhausted' })));
  t.notOk(matchesFilter(letter(), filter({ reason: 'expired' })));
  t.ok(matchesFilter(letter(), filter({ functionName: 'echo' })));
  t.ok(matchesFilter(letter(), filter({ functionName: 'echo.openfaas-fn' })));
  t.notOk(matchesFilter(letter(), filter({ functionName: 'echo.other' })));
  t.notOk(matchesFilter(letter(), filter({ functionName: 'resize' })));
  t.notOk(matchesFilter(letter({ invocation: undefined, reason: 'poison' }), filter({ functionName: 'echo' })), 'poison has no function');
  t.ok(matchesFilter(letter({ invocation: undefined, reason: 'poison' }), filter({ reason: 'poison' })));

  const at = NOW - 10 * MINUTE;
  t.ok(matchesFilter(letter(), filter({ sinceMs: at })), 'since is inclusive');
  t.notOk(matchesFilter(letter(), filter({ sinceMs: at + 1 })));
  t.ok(matchesFilter(letter(), filter({ untilMs: at })), 'until is inclusive');
  t.notOk(matchesFilter(letter(), filter({ untilMs: at - 1 })));
  t.notOk(matchesFilter(letter({ atMs: Number.NaN }), filter({ sinceMs: 0 })), 'an unknown time never matches a time bound');
  t.notOk(matchesFilter(letter(), filter({ queue: 'faas-request', reason: 'expired' })), 'all must match');
});

t.test('subject, criteria and queue-only', async (t) => {
  t.equal(filterSubject({}), 'asyncfn.dead-letters.>');
  t.equal(filterSubject({ queue: 'slow' }), 'asyncfn.dead-letters.slow');
  t.notOk(hasCriteria(filter({ seqs: [1] })), 'sequences alone are not criteria');
  t.ok(hasCriteria(filter({ untilMs: 1 })));
  t.ok(isQueueOnly(filter({ queue: 'slow' })));
  t.notOk(isQueueOnly(filter({ queue: 'slow', reason: 'expired' })));
  t.notOk(isQueueOnly(filter({ queue: 'slow', seqs: [1] })));
  t.notOk(isQueueOnly(filter()));
});
