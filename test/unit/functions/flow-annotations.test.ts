import t from 'tap';
import { describeFlow, FLOW_ANNOTATIONS, functionFlowOf, functionFlows } from '../../../src/functions/flow-annotations.js';

/** A function's flow-control annotations: rate limits and concurrency limits, for the function and per X-Concurrency-Key. */

t.test('functionFlowOf: no flow annotation, no limit and no warning', async (t) => {
  const flow = functionFlowOf({ 'com.openfaas.queue': 'slow', 'com.openfaas.retry.attempts': '3' });
  t.same(flow, { warnings: [] });
  t.ok(Object.isFrozen(flow));
});

t.test('functionFlowOf: every limit read', async (t) => {
  const flow = functionFlowOf({
    'com.asyncfn.rate_limit': '120/1m',
    'com.asyncfn.key_rate_limit': '10/s',
    'com.asyncfn.max_inflight': '3',
    'com.asyncfn.key_max_inflight': '1',
  });
  t.same(flow, {
    rate: { count: 120, periodMs: 60_000 },
    keyRate: { count: 10, periodMs: 1_000 },
    maxInflight: 3,
    keyMaxInflight: 1,
    warnings: [],
  });
  t.ok(Object.isFrozen(flow));
  t.same(describeFlow(flow), { rate: '120/1m', keyRate: '10/1s', maxInflight: 3, keyMaxInflight: 1 });
});

t.test('functionFlowOf: absent limits are left out, not undefined', async (t) => {
  const flow = functionFlowOf({ 'com.asyncfn.rate_limit': '20/s' });
  t.same(Object.keys(flow).sort(), ['rate', 'warnings']);
  t.same(describeFlow(flow), { rate: '20/1s' });
});

t.test('functionFlowOf: the OpenFaaS max_inflight name, and which one wins', async (t) => {
  t.same(functionFlowOf({ 'com.openfaas.max_inflight': '5' }), { maxInflight: 5, warnings: [] });
  t.same(functionFlowOf({ 'com.openfaas.max_inflight': '5', 'com.asyncfn.max_inflight': '5' }), { maxInflight: 5, warnings: [] }, 'the same value twice: no warning');
  const both = functionFlowOf({ 'com.openfaas.max_inflight': '5', 'com.asyncfn.max_inflight': '2' });
  t.equal(both.maxInflight, 2);
  t.same(both.warnings, ['com.asyncfn.max_inflight=2 and com.openfaas.max_inflight=5 differ; using 2']);
  const badOwn = functionFlowOf({ 'com.openfaas.max_inflight': '5', 'com.asyncfn.max_inflight': 'lots' });
  t.equal(badOwn.maxInflight, 5, 'an invalid asyncfn value falls back to the valid OpenFaaS one');
  t.equal(badOwn.warnings.length, 1);
});

t.test('functionFlowOf: every bad value is left out with a one-line warning naming it', async (t) => {
  const rows: ReadonlyArray<[string, string, RegExp]> = [
    [FLOW_ANNOTATIONS.rateLimit, '120', /com\.asyncfn\.rate_limit ignored: "120" has no "\/"/],
    [FLOW_ANNOTATIONS.rateLimit, '0/s', /com\.asyncfn\.rate_limit ignored: "0\/s": the count must be between 1/],
    [FLOW_ANNOTATIONS.rateLimit, '5/week', /com\.asyncfn\.rate_limit ignored: "5\/week": the period "week" is not a unit/],
    [FLOW_ANNOTATIONS.keyRateLimit, 'fast', /com\.asyncfn\.key_rate_limit ignored/],
    [FLOW_ANNOTATIONS.maxInflight, '0', /com\.asyncfn\.max_inflight="0" ignored: not an integer ≥ 1/],
    [FLOW_ANNOTATIONS.maxInflight, '2.5', /not an integer ≥ 1/],
    [FLOW_ANNOTATIONS.maxInflight, '-1', /not an integer ≥ 1/],
    [FLOW_ANNOTATIONS.maxInflight, '', /not an integer ≥ 1/],
    [FLOW_ANNOTATIONS.openfaasMaxInflight, 'ten', /com\.openfaas\.max_inflight="ten" ignored/],
    [FLOW_ANNOTATIONS.keyMaxInflight, '99999999999999999999', /com\.asyncfn\.key_max_inflight=.* ignored/],
  ];
  for (const [name, value, warning] of rows) {
    const flow = functionFlowOf({ [name]: value });
    t.same(Object.keys(flow), ['warnings'], `${name}=${value}: no limit`);
    t.equal(flow.warnings.length, 1);
    t.match(flow.warnings[0], warning);
    t.notMatch(flow.warnings[0], /\n/);
  }
  const mixed = functionFlowOf({ 'com.asyncfn.rate_limit': 'x', 'com.asyncfn.key_rate_limit': '10/s', 'com.asyncfn.max_inflight': ' 4 ' });
  t.same(mixed.keyRate, { count: 10, periodMs: 1_000 }, 'one bad value does not drop the good ones');
  t.equal(mixed.maxInflight, 4, 'spaces around an integer are fine');
  t.equal(mixed.warnings.length, 1);
});

t.test('functionFlows: parsed once per annotations object', async (t) => {
  const flows = functionFlows();
  const annotations = Object.freeze({ 'com.asyncfn.rate_limit': '20/s' });
  const first = flows(annotations);
  t.equal(flows(annotations), first, 'the same object for the same annotations');
  t.not(flows({ 'com.asyncfn.rate_limit': '20/s' }), first, 'a new lookup parses again');
});
