import t from 'tap';
import { decideCallback, formatAge, planDelivery, receiverStatusOf, type CallbackRetryPolicy } from '../../../actors/callback.policy.js';

const HOUR = 3_600_000;

const policy: CallbackRetryPolicy = {
  maxAttempts: 10,
  initialWaitMs: 10_000,
  maxWaitMs: 600_000,
  permanentStatuses: new Set([404, 410]),
  maxAgeMs: 24 * HOUR,
};

const decide = (status: number | undefined, attempt = 1, ageMs = 0, over: Partial<CallbackRetryPolicy> = {}) =>
  decideCallback({ status, attempt, ageMs }, { ...policy, ...over });

t.test('any 2xx is delivered, whatever the attempt or age', async (t) => {
  for (const status of [200, 201, 204, 299]) t.same(decide(status), { action: 'delivered' }, String(status));
  t.same(decide(200, 10, 48 * HOUR), { action: 'delivered' }, 'even past every limit');
});

t.test('a permanent status is a dead letter at once, with the status in one line', async (t) => {
  t.same(decide(404), { action: 'deadLetter', reason: 'receiver answered 404 (permanent)', permanent: true });
  t.same(decide(410, 3), { action: 'deadLetter', reason: 'receiver answered 410 (permanent)', permanent: true }, '410 is no exception');
  t.same(decide(422, 1, 0, { permanentStatuses: new Set([422]) }), { action: 'deadLetter', reason: 'receiver answered 422 (permanent)', permanent: true });
  t.equal(decide(404, 1, 0, { permanentStatuses: new Set() }).action, 'retry', 'none configured: a 404 is retried like a 500');
});

t.test('other failures are retried with doubling back-off up to maxWaitMs', async (t) => {
  t.same(decide(500, 1), { action: 'retry', delayMs: 10_000 });
  t.same(decide(undefined, 2), { action: 'retry', delayMs: 20_000 }, 'no answer is retried too');
  t.same(decide(302, 3), { action: 'retry', delayMs: 40_000 });
  t.same(decide(503, 9), { action: 'retry', delayMs: 600_000 }, 'capped');
  t.same(decide(503, 1_000, 0, { maxAttempts: 2_000 }), { action: 'retry', delayMs: 600_000 }, 'no overflow on huge attempts');
});

t.test('the last attempt is a dead letter that says how many were made', async (t) => {
  t.same(decide(500, 10), { action: 'deadLetter', reason: 'gave up after 10 attempts', permanent: false });
  t.same(decide(undefined, 1, 0, { maxAttempts: 1 }), { action: 'deadLetter', reason: 'gave up after 1 attempt', permanent: false });
});

t.test('callback_max_age: no retry is scheduled past it, and a failure at it is a dead letter', async (t) => {
  const short = { maxAgeMs: 60_000 };
  t.same(decide(500, 1, 0, short), { action: 'retry', delayMs: 10_000 });
  t.same(decide(500, 3, 35_000, short), { action: 'retry', delayMs: 25_000 }, 'the back-off (40 s) is cut so the last attempt falls at max age');
  t.same(decide(500, 3, 59_999, short), { action: 'retry', delayMs: 1 });
  t.same(decide(500, 3, 59_999.4, short), { action: 'retry', delayMs: 1 }, 'whole ms, never a fraction');
  t.same(decide(500, 4, 60_000, short), { action: 'deadLetter', reason: 'gave up after 1m (callback_max_age 1m)', permanent: false });
  t.same(decide(undefined, 2, 90_500, short), { action: 'deadLetter', reason: 'gave up after 1m31s (callback_max_age 1m)', permanent: false });
  t.same(decide(500, 5, 1_000 * HOUR, { maxAgeMs: 0 }), { action: 'retry', delayMs: 160_000 }, '0 means no limit');
  t.equal(decide(404, 1, 0, short).action, 'deadLetter', 'a permanent status does not wait for the age');
});

t.test('a stored callback whose direct attempt got an answer waits out initialWaitMs first, then is retried with doubling back-off', async (t) => {
  const plan = (deliveryCount: number, directStatus: number | undefined, ageMs = 0, over: Partial<CallbackRetryPolicy> = {}) =>
    planDelivery({ deliveryCount, directStatus, ageMs }, { ...policy, ...over });
  t.same(plan(1, 503), { action: 'wait', delayMs: 10_000 }, 'no POST right after the direct 503: the back-off after attempt 1');
  t.same(plan(2, 503), { action: 'attempt', attempt: 2 }, 'the next delivery is attempt 2');
  t.same(plan(5, 503), { action: 'attempt', attempt: 5 });
  // The gaps between POSTs, as the retrier naks after each: initialWaitMs, then doubling.
  const gaps = [plan(1, 503), ...[2, 3, 4].map((attempt) => decide(503, attempt))].map((d) => ('delayMs' in d ? d.delayMs : undefined));
  t.same(gaps, [10_000, 20_000, 40_000, 80_000]);
  t.same(plan(1, 404), { action: 'deadLetter', reason: 'receiver answered 404 (permanent)', permanent: true }, 'a permanent answer is not asked twice');
  t.same(plan(1, 503, 0, { maxAttempts: 1 }), { action: 'deadLetter', reason: 'gave up after 1 attempt', permanent: false }, 'the direct attempt was the last');
  t.same(plan(1, 503, 0, { maxAgeMs: 4_000 }), { action: 'wait', delayMs: 4_000 }, 'cut at callback_max_age');
  t.same(plan(1, undefined), { action: 'attempt', attempt: 2 }, 'no answer (or a replay): posted at once, with the full callback_timeout');
  t.same(plan(3, undefined), { action: 'attempt', attempt: 4 });
});

t.test('receiverStatusOf reads a status property, and nothing else', async (t) => {
  t.equal(receiverStatusOf(Object.assign(new Error('x'), { status: 404 })), 404);
  t.equal(receiverStatusOf(new Error('connection refused')), undefined);
  t.equal(receiverStatusOf({ status: '404' }), undefined);
  t.equal(receiverStatusOf({ status: 42 }), undefined);
  t.equal(receiverStatusOf({ status: 404.5 }), undefined);
  t.equal(receiverStatusOf(undefined), undefined);
  t.equal(receiverStatusOf('404'), undefined);
});

t.test('formatAge', async (t) => {
  t.equal(formatAge(850), '850ms');
  t.equal(formatAge(1_640), '1.6s');
  t.equal(formatAge(2_000), '2s');
  t.equal(formatAge(125_000), '2m5s');
  t.equal(formatAge(24 * HOUR), '24h');
  t.equal(formatAge(25 * HOUR + 1_000), '25h0m1s');
});
