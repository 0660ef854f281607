import t from 'tap';
import { annotatedTimeout, callTimeout, parseTimeoutMs } from '../../../src/functions/timeout.js';

/** A call's limit: the queue's upstream_timeout, replaced by the function's annotation up to it, lowered by X-Timeout. */

const MINUTE = 60_000;

t.test('parseTimeoutMs: durations as the config writes them, whole ms, at least 1 ms', async (t) => {
  const good: [string, number][] = [
    ['30s', 30_000],
    ['2m', 120_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['30', 30_000],
    ['1.5', 1_500],
    [' 1s ', 1_000],
    ['1ms', 1],
    ['1500us', 2],
  ];
  for (const [text, ms] of good) t.equal(parseTimeoutMs(text), ms, JSON.stringify(text));
  for (const bad of ['', 'soon', '0', '0s', '-1s', '100us', '1e3', '1d', '5 s']) t.equal(parseTimeoutMs(bad), undefined, JSON.stringify(bad));
});

t.test('annotatedTimeout: com.asyncfn.timeout over com.openfaas.timeout, up to upstream_timeout', async (t) => {
  t.same(annotatedTimeout({}, MINUTE), { warnings: [] }, 'no annotation: no limit of its own');
  t.same(annotatedTimeout({ 'com.openfaas.timeout': '1s' }, MINUTE), { timeout: { ms: 1_000, setBy: 'com.openfaas.timeout' }, warnings: [] });
  t.same(annotatedTimeout({ 'com.asyncfn.timeout': '10s' }, MINUTE).timeout, { ms: 10_000, setBy: 'com.asyncfn.timeout' });
  t.same(
    annotatedTimeout({ 'com.openfaas.timeout': '1s', 'com.asyncfn.timeout': '10s' }, MINUTE).timeout,
    { ms: 10_000, setBy: 'com.asyncfn.timeout' },
    "both: asyncfn's own wins",
  );
  t.same(annotatedTimeout({ 'com.openfaas.timeout': '60s' }, MINUTE).timeout, { ms: MINUTE, setBy: 'com.openfaas.timeout' }, 'equal to the cap is fine');
});

t.test('annotatedTimeout: above the cap or invalid leaves upstream_timeout, with a warning', async (t) => {
  t.same(annotatedTimeout({ 'com.openfaas.timeout': '2m' }, MINUTE), {
    warnings: [`com.openfaas.timeout="2m" is above the queue's upstream_timeout (60s), which caps it; using that`],
  });
  t.same(annotatedTimeout({ 'com.asyncfn.timeout': 'soon' }, MINUTE), {
    warnings: [`com.asyncfn.timeout="soon" is not a duration ≥ 1ms like "30s", "2m" or bare seconds; using the queue's upstream_timeout (60s)`],
  });
  t.match(annotatedTimeout({ 'com.openfaas.timeout': '0' }, MINUTE).warnings, [/is not a duration/]);
  t.match(annotatedTimeout({ 'com.openfaas.timeout': 'x' }, Number.POSITIVE_INFINITY).warnings, [/using the queue's upstream_timeout$/], 'no cap given: no number shown');
});

t.test('callTimeout: the narrowest limit, never above upstream_timeout', async (t) => {
  const annotated = { ms: 5_000, setBy: 'com.openfaas.timeout' };
  t.same(callTimeout(MINUTE, undefined, undefined), { ms: MINUTE, setBy: 'upstream_timeout' });
  t.same(callTimeout(MINUTE, annotated, undefined), annotated, 'the annotation replaces the default');
  t.same(callTimeout(MINUTE, annotated, 1_000), { ms: 1_000, setBy: 'X-Timeout' }, 'X-Timeout lowers it');
  t.same(callTimeout(MINUTE, annotated, 30_000), annotated, 'X-Timeout cannot raise it');
  t.same(callTimeout(MINUTE, undefined, 1_000), { ms: 1_000, setBy: 'X-Timeout' });
  t.same(callTimeout(MINUTE, undefined, 10 * MINUTE), { ms: MINUTE, setBy: 'upstream_timeout' }, 'X-Timeout above upstream_timeout is capped');
  t.same(callTimeout(1_000, annotated, undefined), { ms: 1_000, setBy: 'upstream_timeout' }, 'an uncapped annotation is capped still');
  t.same(callTimeout(MINUTE, annotated, 5_000), annotated, "equal: the function's own limit is named");
});
