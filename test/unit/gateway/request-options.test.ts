import t from 'tap';
import { BadRequestError } from '../../../src/errors.js';
import { idempotencyKeyFrom, notBeforeFrom, storeResultFrom, timeoutFrom } from '../../../src/gateway/request-options.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const DAY = 86_400_000;

t.test('Idempotency-Key: printable ASCII, 1-255 characters, once', async (t) => {
  t.equal(idempotencyKeyFrom(undefined), undefined);
  t.equal(idempotencyKeyFrom('order-42'), 'order-42');
  t.equal(idempotencyKeyFrom('a b'), 'a b', 'inner spaces are fine');
  t.equal(idempotencyKeyFrom('k'.repeat(255)), 'k'.repeat(255));
  for (const bad of ['', ' lead', 'k'.repeat(256), 'naïve', 'tab\there']) {
    t.throws(() => idempotencyKeyFrom(bad), { message: 'Idempotency-Key must be 1-255 printable ASCII characters' }, JSON.stringify(bad));
  }
  t.throws(() => idempotencyKeyFrom(['a', 'b']), { message: 'Idempotency-Key must be given once' });
});

t.test('X-Delay-Seconds: seconds from now, fractions allowed, 0 means now', async (t) => {
  t.equal(notBeforeFrom(undefined, undefined, NOW, DAY), undefined);
  t.equal(notBeforeFrom('30', undefined, NOW, DAY), NOW + 30_000);
  t.equal(notBeforeFrom('1.5', undefined, NOW, DAY), NOW + 1_500);
  t.equal(notBeforeFrom('0', undefined, NOW, DAY), undefined);
  for (const bad of ['-1', 'abc', '1e3', '', ' ']) {
    t.throws(() => notBeforeFrom(bad, undefined, NOW, DAY), { message: /X-Delay-Seconds must be a number of seconds/ }, JSON.stringify(bad));
  }
});

t.test('X-Not-Before: RFC 3339 or HTTP-date; the past means now', async (t) => {
  t.equal(notBeforeFrom(undefined, '2026-11-22T12:05:00Z', NOW, DAY), NOW + 300_000);
  t.equal(notBeforeFrom(undefined, '2026-11-22T13:05:00.250+01:00', NOW, DAY), NOW + 300_250);
  t.equal(notBeforeFrom(undefined, 'Sun, 22 Nov 2026 12:01:00 GMT', NOW, DAY), NOW + 60_000);
  t.equal(notBeforeFrom(undefined, '2020-01-01T00:00:00Z', NOW, DAY), undefined);
  for (const bad of ['tomorrow', '2026-11-22', '1700000000', 'Sun, 22 Nov 2026 12:01:00 PST']) {
    t.throws(() => notBeforeFrom(undefined, bad, NOW, DAY), { message: /X-Not-Before must be an RFC 3339 time/ }, bad);
  }
});

t.test('refused: both headers, or further ahead than max_delay', async (t) => {
  t.throws(() => notBeforeFrom('1', '2026-11-22T12:05:00Z', NOW, DAY), { message: 'give X-Delay-Seconds or X-Not-Before, not both' });
  t.throws(() => notBeforeFrom(String(DAY / 1000 + 1), undefined, NOW, DAY), { message: 'the requested delay is longer than max_delay (86400 s)' });
  t.equal(notBeforeFrom(String(DAY / 1000), undefined, NOW, DAY), NOW + DAY, 'exactly max_delay is allowed');
});

t.test('X-Store-Result', async (t) => {
  t.equal(storeResultFrom(undefined), false);
  t.equal(storeResultFrom('true'), true);
  t.equal(storeResultFrom('TRUE'), true);
  t.equal(storeResultFrom('1'), true);
  t.equal(storeResultFrom('false'), false);
  t.throws(() => storeResultFrom('yes please'), { message: 'X-Store-Result must be true or false' });
});

t.test('X-Timeout: a duration as the config writes it, once; anything else a 400', async (t) => {
  t.equal(timeoutFrom(undefined), undefined);
  t.equal(timeoutFrom('1s'), 1_000);
  t.equal(timeoutFrom('2m'), 120_000);
  t.equal(timeoutFrom('30'), 30_000, 'bare seconds');
  t.equal(timeoutFrom('250ms'), 250);
  for (const bad of ['', 'soon', '0', '-5s', '1d', '100us']) {
    t.throws(() => timeoutFrom(bad), new BadRequestError('X-Timeout must be a duration ≥ 1ms like 30s, 2m, 500ms or bare seconds'), JSON.stringify(bad));
  }
  t.throws(() => timeoutFrom(['1s', '2s']), { message: 'X-Timeout must be given once' });
});
