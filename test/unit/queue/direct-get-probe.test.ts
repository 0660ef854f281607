import { NoRespondersError, TimeoutError } from '@nats-io/nats-core';
import t from 'tap';
import { untilAnswered } from '../../../src/queue/direct-get-probe.js';

/** A request that times out `timeouts` times, then answers (or fails with `then`). */
function request(timeouts: number, then?: Error) {
  let sent = 0;
  const send = async (): Promise<void> => {
    sent += 1;
    if (sent <= timeouts) throw new TimeoutError();
    if (then) throw then;
  };
  return { send, sent: () => sent };
}

t.test('answered at once: one probe', async (t) => {
  const r = request(0);
  t.equal(await untilAnswered(r.send), true);
  t.equal(r.sent(), 1);
});

t.test('a probe that times out is sent again until one is answered', async (t) => {
  const r = request(2);
  t.equal(await untilAnswered(r.send), true);
  t.equal(r.sent(), 3);
});

t.test('any failure but a timeout ends the wait: the real read reports it', async (t) => {
  const r = request(1, new NoRespondersError('$JS.API.DIRECT.GET.KV_b'));
  t.equal(await untilAnswered(r.send), true);
  t.equal(r.sent(), 2);
});

t.test('bounded: after the last probe times out it gives up, unanswered', async (t) => {
  const r = request(Number.POSITIVE_INFINITY);
  t.equal(await untilAnswered(r.send, 4), false);
  t.equal(r.sent(), 4);
});
