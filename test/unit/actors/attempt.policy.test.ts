import t from 'tap';
import { mayRun, redeliveredAttempt } from '../../../actors/attempt.policy.js';

t.test('with no entry only the first delivery started an attempt: the redelivery is attempt 2, whatever the delivery count', async (t) => {
  t.same(redeliveredAttempt(undefined, 2), { attempt: 2, throttled: 0 });
  // nats-server < 2.10.16 counts a retry's redelivery that met only ended pull requests and sends
  // it again after ack_wait: delivery 3 is still the second attempt.
  t.same(redeliveredAttempt(undefined, 3), { attempt: 2, throttled: 0 });
});

t.test('with an entry the redelivery is the attempt after those recorded, and keeps the throttles', async (t) => {
  t.same(redeliveredAttempt({ attempts: 2, throttled: 0 }, 5), { attempt: 3, throttled: 0 });
  t.same(redeliveredAttempt({ attempts: 0, throttled: 0 }, 2), { attempt: 1, throttled: 0 }, 'a first delivery given back unworked');
  t.same(redeliveredAttempt({ attempts: 1, throttled: 4 }, 6), { attempt: 2, throttled: 4 }, 'four throttles after the first attempt');
});

t.test("an older worker's entry counted the deliveries that were no attempt: the delivery count less those", async (t) => {
  t.same(redeliveredAttempt({ throttled: 2 }, 5), { attempt: 3, throttled: 2 });
  t.same(redeliveredAttempt({ throttled: 9 }, 3), { attempt: 1, throttled: 9 }, 'never below 1');
});

t.test('a redelivery may run up to one attempt past max_attempts (a stalled attempt), never two', async (t) => {
  t.ok(mayRun(3, 3));
  t.ok(mayRun(4, 3), 'the last attempt was cut off by its worker: once more');
  t.notOk(mayRun(5, 3));
  t.ok(mayRun(2, 1));
  t.notOk(mayRun(3, 1));
});
