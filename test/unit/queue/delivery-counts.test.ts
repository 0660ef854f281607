import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { deliveryCountsOf } from '../../../src/queue/delivery-counts.js';

// nats.js's own reader of the same subjects, the oracle: it is not exported, so it is loaded from beside the package's entry.
const require = createRequire(import.meta.url);
const { parseInfo } = require(join(dirname(require.resolve('@nats-io/jetstream')), 'jsmsg.js')) as {
  parseInfo(this: void, subject: string): { deliveryCount: number; pending: number };
};

t.test('reads the delivery count and the pending count of both forms of an ack subject', async (t) => {
  t.same(deliveryCountsOf('$JS.ACK.faas-request.faas-workers.1.42.40.1733500000000000000.7'), { deliveryCount: 1, pending: 7 }, 'nine tokens');
  t.same(
    deliveryCountsOf('$JS.ACK.hub.ACCHASH.faas-request.faas-workers.3.42.40.1733500000000000000.0.8f3a'),
    { deliveryCount: 3, pending: 0 },
    'a domain, an account hash and a random token',
  );
  t.same(deliveryCountsOf('$JS.ACK._.ACCHASH.s.c.2.1.1.1.5'), { deliveryCount: 2, pending: 5 }, 'eleven tokens, no domain');
});

t.test('tells a subject it cannot read, for nats.js to refuse', async (t) => {
  for (const subject of [
    '',
    '_INBOX.abc.def',
    '$JS.ACK.s.c.1.2.3.4',
    '$JS.ACK.s.c.1.2.3.4.5.6',
    '$JS.NAK.s.c.1.2.3.4.5',
    '$JS.ACK.s.c.x.2.3.4.5',
    '$JS.ACK.s.c.0.2.3.4.5',
    '$JS.ACK.s.c.1.2.3.4.-5',
    '$JS.ACK.s.c.1.2.3.4.',
  ]) {
    t.equal(deliveryCountsOf(subject), undefined, JSON.stringify(subject));
  }
});

t.test('reads what nats.js reads from any ack subject a server sends', async (t) => {
  const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/);
  const count = fc.integer({ min: 0, max: 2 ** 40 });
  const subject = fc
    .record({
      domain: fc.option(token),
      hash: token,
      stream: token,
      consumer: token,
      delivered: fc.integer({ min: 1, max: 2 ** 31 }),
      counts: fc.tuple(count, count, count),
      pending: count,
      random: fc.option(token),
    })
    .map(({ domain, hash, stream, consumer, delivered, counts, pending, random }) => {
      const tail = [stream, consumer, delivered, ...counts, pending].join('.');
      return domain === null && random === null ? `$JS.ACK.${tail}` : `$JS.ACK.${domain ?? '_'}.${hash}.${tail}${random === null ? '' : `.${random}`}`;
    });
  fc.assert(
    fc.property(subject, (s) => {
      const info = parseInfo(s);
      t.same(deliveryCountsOf(s), { deliveryCount: info.deliveryCount, pending: info.pending }, s);
    }),
    { numRuns: 500 },
  );
});
