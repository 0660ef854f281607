import t from 'tap';
import { DEFAULT_RETRY_POLICY, NO_RETRIES } from '../../helpers/machine-fakes.js';
import { parseDurationMs } from '../../../src/config/duration.js';
import { functionPolicies, functionPolicyOf, RETRY_ANNOTATIONS, STORE_RESULT_ANNOTATION } from '../../../src/functions/annotations.js';

/** A function's annotations read where it is resolved: retry overrides over the queue's policy, store_result. */

const sorted = (set: ReadonlySet<number> | undefined) => (set === undefined ? undefined : [...set].sort((a, b) => a - b));

t.test('functionPolicyOf: no annotations keeps the base values', async (t) => {
  const { policy, warnings } = functionPolicyOf(DEFAULT_RETRY_POLICY, { 'com.openfaas.scale.min': '2' });
  t.same(warnings, []);
  t.match(policy, { maxAttempts: 10, initialWaitMs: 10_000, maxWaitMs: 120_000, mode: 'exponential' });
  t.same(sorted(policy.retryStatuses), [408, 429, 500, 502, 503, 504]);
  t.ok(Object.isFrozen(policy));
});

t.test('functionPolicyOf: good values override the base', async (t) => {
  const { policy, warnings } = functionPolicyOf(DEFAULT_RETRY_POLICY, {
    'com.openfaas.retry.attempts': '3',
    'com.openfaas.retry.codes': '429, 502',
    'com.openfaas.retry.min_wait': '500ms',
    'com.openfaas.retry.max_wait': '1m30s',
    'com.openfaas.retry.backoff': 'full',
  });
  t.same(warnings, []);
  t.match(policy, { maxAttempts: 3, initialWaitMs: 500, maxWaitMs: 90_000, mode: 'full' });
  t.same(sorted(policy.retryStatuses), [429, 502]);
  t.same(sorted(DEFAULT_RETRY_POLICY.retryStatuses), [408, 429, 500, 502, 503, 504], 'base untouched');

  const durations: [string, number][] = [
    ['5s', 5000],
    ['2m', 120_000],
    ['30', 30_000],
    ['1.5', 1500],
    ['1h', 3_600_000],
    ['0s', 0],
  ];
  for (const [text, ms] of durations) {
    const r = functionPolicyOf({ ...DEFAULT_RETRY_POLICY, maxWaitMs: 7_200_000 }, { 'com.openfaas.retry.min_wait': text });
    t.equal(r.policy.initialWaitMs, ms, `min_wait ${text}`);
    t.same(r.warnings, []);
  }
  t.equal(functionPolicyOf(DEFAULT_RETRY_POLICY, { 'com.openfaas.retry.backoff': 'equal' }).policy.mode, 'equal');
  t.equal(functionPolicyOf(DEFAULT_RETRY_POLICY, { 'com.openfaas.retry.attempts': '1' }).policy.maxAttempts, 1);
});

t.test('functionPolicyOf: every bad value falls back with a one-line warning', async (t) => {
  const statuses = '408,429,500,502,503,504';
  const rows: [string, string, string][] = [
    ['com.openfaas.retry.attempts', '0', '10'],
    ['com.openfaas.retry.attempts', '-1', '10'],
    ['com.openfaas.retry.attempts', '2.5', '10'],
    ['com.openfaas.retry.attempts', 'ten', '10'],
    ['com.openfaas.retry.attempts', '', '10'],
    ['com.openfaas.retry.codes', '429,abc', statuses],
    ['com.openfaas.retry.codes', '99', statuses],
    ['com.openfaas.retry.codes', '600', statuses],
    ['com.openfaas.retry.codes', '429,', statuses],
    ['com.openfaas.retry.codes', '', statuses],
    ['com.openfaas.retry.min_wait', '5 seconds', '10s'],
    ['com.openfaas.retry.min_wait', '-5s', '10s'],
    ['com.openfaas.retry.min_wait', '5x', '10s'],
    ['com.openfaas.retry.min_wait', 's', '10s'],
    ['com.openfaas.retry.max_wait', 'forever', '120s'],
    ['com.openfaas.retry.max_wait', '', '120s'],
    ['com.openfaas.retry.backoff', 'linear', 'exponential'],
    ['com.openfaas.retry.backoff', '', 'exponential'],
  ];
  for (const [name, value, used] of rows) {
    const { policy, warnings } = functionPolicyOf(DEFAULT_RETRY_POLICY, { [name]: value });
    t.equal(warnings.length, 1, `${name}=${JSON.stringify(value)}: one warning`);
    const w = warnings[0] ?? '';
    t.ok(w.startsWith(`${name}=${JSON.stringify(value)} `), `names the annotation and the value: ${w}`);
    t.ok(w.endsWith(`; using ${used}`), `says what was used: ${w}`);
    t.notOk(w.includes('\n'), 'one line');
    t.match(policy, { maxAttempts: 10, initialWaitMs: 10_000, maxWaitMs: 120_000, mode: 'exponential' });
    t.same(sorted(policy.retryStatuses), [408, 429, 500, 502, 503, 504]);
  }
  t.same(functionPolicyOf(DEFAULT_RETRY_POLICY, { 'com.openfaas.retry.attempts': '0' }).warnings, ['com.openfaas.retry.attempts="0" is not an integer ≥ 1; using 10']);
});

t.test('functionPolicyOf: bad values fall back one by one, good ones still apply', async (t) => {
  const { policy, warnings } = functionPolicyOf(DEFAULT_RETRY_POLICY, {
    'com.openfaas.retry.attempts': 'many',
    'com.openfaas.retry.codes': '503',
    'com.openfaas.retry.backoff': 'random',
    'com.openfaas.retry.max_wait': '1m',
  });
  t.equal(warnings.length, 2);
  t.match(warnings[0], /^com\.openfaas\.retry\.attempts="many"/);
  t.match(warnings[1], /^com\.openfaas\.retry\.backoff="random"/);
  t.match(policy, { maxAttempts: 10, maxWaitMs: 60_000, mode: 'exponential' });
  t.same(sorted(policy.retryStatuses), [503]);
});

t.test('functionPolicyOf: min_wait > max_wait keeps both base waits', async (t) => {
  const cases: Record<string, string>[] = [
    { 'com.openfaas.retry.min_wait': '3m' }, // above the base max of 120s
    { 'com.openfaas.retry.max_wait': '5s' }, // below the base min of 10s
    { 'com.openfaas.retry.min_wait': '1m', 'com.openfaas.retry.max_wait': '30s' },
  ];
  for (const annotations of cases) {
    const { policy, warnings } = functionPolicyOf(DEFAULT_RETRY_POLICY, annotations);
    t.equal(policy.initialWaitMs, 10_000, JSON.stringify(annotations));
    t.equal(policy.maxWaitMs, 120_000);
    t.equal(warnings.length, 1);
    t.match(warnings[0], /com\.openfaas\.retry\.min_wait .* greater than com\.openfaas\.retry\.max_wait .*; using 10s and 120s$/);
  }
  const equal = functionPolicyOf(DEFAULT_RETRY_POLICY, { 'com.openfaas.retry.min_wait': '30s', 'com.openfaas.retry.max_wait': '30s' });
  t.same(equal.warnings, [], 'min == max is fine');
  t.match(equal.policy, { initialWaitMs: 30_000, maxWaitMs: 30_000 });
});

t.test('durations are read by the config parser, so an annotation and a variable agree', async (t) => {
  const base = { ...DEFAULT_RETRY_POLICY, maxWaitMs: 7_200_000 };
  for (const text of ['500ms', '1m30s', '1.5h', '.5s', '30', '+2s', '1500us', '2000000ns']) {
    const { policy, warnings } = functionPolicyOf(base, { [RETRY_ANNOTATIONS.minWait]: text });
    t.same(warnings, [], text);
    t.equal(policy.initialWaitMs, Math.round(parseDurationMs(text)!), `${text} as the config reads it`);
  }
});

t.test('store_result: only "true" keeps every result', async (t) => {
  t.equal(functionPolicyOf(NO_RETRIES, { [STORE_RESULT_ANNOTATION]: 'true' }).storeResult, true);
  t.equal(functionPolicyOf(NO_RETRIES, { [STORE_RESULT_ANNOTATION]: 'yes' }).storeResult, false);
  t.equal(functionPolicyOf(NO_RETRIES, {}).storeResult, false);
  t.equal(functionPolicyOf(NO_RETRIES, { [STORE_RESULT_ANNOTATION]: 'true', [RETRY_ANNOTATIONS.attempts]: '2' }).storeResult, true, 'with retry overrides too');
});

t.test('functionPolicies reads each annotations object once', async (t) => {
  const policyFor = functionPolicies(DEFAULT_RETRY_POLICY, 60_000);
  const annotations = Object.freeze({ [RETRY_ANNOTATIONS.attempts]: '3' });
  const first = policyFor(annotations);
  t.equal(first.policy.maxAttempts, 3);
  t.equal(policyFor(annotations), first, 'the same object: not parsed again');
  t.not(policyFor({ [RETRY_ANNOTATIONS.attempts]: '3' }), first, 'another function (another object) is read on its own');
  t.equal(policyFor({}).policy, DEFAULT_RETRY_POLICY, 'no annotations: the queue policy itself');
});

t.test("the timeout annotation rides in the policy, capped by the queue's upstream_timeout, its warnings with the others", async (t) => {
  t.same(functionPolicyOf(NO_RETRIES, { 'com.openfaas.timeout': '2s' }, 60_000).timeout, { ms: 2_000, setBy: 'com.openfaas.timeout' });
  t.equal(functionPolicyOf(NO_RETRIES, {}, 60_000).timeout, undefined, 'none: upstream_timeout applies');
  const capped = functionPolicyOf(NO_RETRIES, { 'com.openfaas.timeout': '2m', [RETRY_ANNOTATIONS.attempts]: 'many' }, 60_000);
  t.equal(capped.timeout, undefined, 'above the cap: the cap applies');
  t.equal(capped.warnings.length, 2);
  t.match(capped.warnings[0], /^com\.openfaas\.timeout="2m" is above the queue's upstream_timeout \(60s\)/);
  t.match(capped.warnings[1], /^com\.openfaas\.retry\.attempts="many"/);
  const policyFor = functionPolicies(NO_RETRIES, 1_000);
  t.match(policyFor({ 'com.asyncfn.timeout': '5s' }).warnings, [/above the queue's upstream_timeout \(1s\)/], 'functionPolicies caps by its queue');
});
