import t from 'tap';
import {
  apiLabel,
  CANCELLABLE_STATES,
  filterOptionsFrom,
  hasInvocationCriteria,
  INVOCATION_FILTER_FIELDS,
  matchesInvocation,
  parseInvocationFilter,
} from '../../../src/status/filters.js';
import type { InvocationRecord } from '../../../src/status/records.js';

const NOW = Date.parse('2026-05-01T12:00:00Z');
const record = (over: Partial<InvocationRecord> = {}): InvocationRecord => ({
  callId: 'c1',
  function: 'f',
  namespace: 'openfaas-fn',
  queue: 'faas-request',
  state: 'queued',
  attempts: 0,
  enqueuedAtMs: NOW - 60_000,
  ...over,
});

t.test('command-line options parse into a filter', async (t) => {
  const parsed = parseInvocationFilter({ function: ' f ', queue: 'slow', state: 'queued,running,queued', batch: 'b1', since: '2h', before: '2026-05-01T11:59:00Z' }, NOW);
  t.ok(parsed.ok);
  if (!parsed.ok) return;
  t.same(parsed.value, {
    functionName: 'f',
    namespace: undefined,
    queue: 'slow',
    states: ['queued', 'running'],
    batchId: 'b1',
    sinceMs: NOW - 2 * 3_600_000,
    untilMs: Date.parse('2026-05-01T11:59:00Z') - 1,
  });
  t.ok(hasInvocationCriteria(parsed.value));
  const empty = parseInvocationFilter({}, NOW);
  t.ok(empty.ok && !hasInvocationCriteria(empty.value), 'no option, no criterion');
});

t.test('bad options are refused with the option named', async (t) => {
  const bad = (opts: Parameters<typeof parseInvocationFilter>[0], pattern: RegExp, allowed?: typeof CANCELLABLE_STATES) => {
    const parsed = parseInvocationFilter(opts, NOW, allowed ? { allowedStates: allowed } : {});
    t.notOk(parsed.ok, JSON.stringify(opts));
    if (!parsed.ok) t.match(parsed.error, pattern);
  };
  bad({ function: ' ' }, /--function must not be empty/);
  bad({ queue: 'a b' }, /--queue "a b" is not a queue name/);
  bad({ state: 'queued,sleeping' }, /--state "sleeping" is not one of/);
  bad({ state: 'succeeded' }, /only scheduled, queued, running, retrying apply/, CANCELLABLE_STATES);
  bad({ since: 'yesterday' }, /--since "yesterday" is neither a duration/);
  bad({ before: '1h', until: '1h' }, /exclude each other/);
  bad({ since: '1h', until: '2h' }, /--since is later/);
  const api = parseInvocationFilter({ since: 'x' }, NOW, { label: apiLabel });
  t.ok(!api.ok && api.error.startsWith('"since" "x"'), 'the API names fields without dashes');
});

t.test('a record matches when every criterion does', async (t) => {
  const parse = (opts: Parameters<typeof parseInvocationFilter>[0]) => {
    const parsed = parseInvocationFilter(opts, NOW);
    if (!parsed.ok) throw new Error(parsed.error);
    return parsed.value;
  };
  t.ok(matchesInvocation(record(), parse({})), 'the empty filter matches anything');
  t.ok(matchesInvocation(record(), parse({ function: 'f' })));
  t.ok(matchesInvocation(record(), parse({ function: 'f.openfaas-fn' })), 'name.namespace');
  t.notOk(matchesInvocation(record(), parse({ function: 'f.other' })));
  t.notOk(matchesInvocation(record(), parse({ function: 'g' })));
  t.notOk(matchesInvocation(record(), parse({ namespace: 'other' })));
  t.notOk(matchesInvocation(record(), parse({ queue: 'slow' })));
  t.ok(matchesInvocation(record({ state: 'running' }), parse({ state: 'queued,running' })));
  t.notOk(matchesInvocation(record({ state: 'succeeded' }), parse({ state: 'queued,running' })));
  t.ok(matchesInvocation(record({ batchId: 'b1' }), parse({ batch: 'b1' })));
  t.notOk(matchesInvocation(record(), parse({ batch: 'b1' })), 'no batch id matches no batch filter');
  t.ok(matchesInvocation(record(), parse({ since: '2m' })));
  t.notOk(matchesInvocation(record(), parse({ since: '30s' })), 'enqueued before --since');
  t.ok(matchesInvocation(record({ enqueuedAtMs: NOW - 1 }), parse({ until: new Date(NOW - 1).toISOString() })), '--until is inclusive');
  t.notOk(matchesInvocation(record({ enqueuedAtMs: NOW - 1 }), parse({ before: new Date(NOW - 1).toISOString() })), '--before is exclusive');
});

t.test('the API form: JSON body and query string', async (t) => {
  const ok = filterOptionsFrom({ function: 'f', state: ['queued', 'running'], batchId: 'b1', all: false }, { dryRun: 'true' }, INVOCATION_FILTER_FIELDS);
  t.same(ok, { ok: true, value: { fields: { function: 'f', state: 'queued,running', batch: 'b1' }, dryRun: true, all: false } });
  t.same(filterOptionsFrom(undefined, { queue: 'q', all: 'true' }, INVOCATION_FILTER_FIELDS), { ok: true, value: { fields: { queue: 'q' }, dryRun: false, all: true } });
  t.same(filterOptionsFrom({ dryRun: true }, {}, INVOCATION_FILTER_FIELDS), { ok: true, value: { fields: {}, dryRun: true, all: false } });
  const refused = (body: unknown, query: Record<string, unknown>, pattern: RegExp) => {
    const parsed = filterOptionsFrom(body, query, INVOCATION_FILTER_FIELDS);
    t.notOk(parsed.ok);
    if (!parsed.ok) t.match(parsed.error, pattern);
  };
  refused([1], {}, /JSON object/);
  refused('f', {}, /JSON object/);
  refused({ colour: 'red' }, {}, /unknown filter field "colour"/);
  refused({ function: 'f' }, { function: 'g' }, /"function" is given twice/);
  refused({ function: { name: 'f' } }, {}, /must be a string/);
  refused({ dryRun: 'yes' }, {}, /"dryRun" must be true or false/);
});
