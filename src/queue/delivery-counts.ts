/**
 * The two numbers the worker reads from a delivered message's reply subject: how many times
 * JetStream has delivered it, and how many messages of the consumer wait behind it.
 *
 * nats.js's `msg.info` parses the same subject into a DeliveryInfo of ten fields and keeps it on
 * the message, so every in-flight invocation carried one (~300 B of heap each, BENCHMARKS.md "What
 * an in-flight invocation holds"). Read here, the numbers are kept and the rest is garbage at once.
 *
 * The subject is the one nats.js's `parseInfo` (@nats-io/jetstream, jsmsg.ts) reads:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>`, or
 * with a domain and an account hash after `$JS.ACK` and, from newer servers, a random token at the
 * end (11 tokens or more). test/integration/delivered-headers.test.ts compares both numbers with
 * `msg.info` on real deliveries.
 */
export interface DeliveryCounts {
  /** 1 for the first delivery. */
  readonly deliveryCount: number;
  /** Messages of the consumer not yet delivered when this one was. */
  readonly pending: number;
}

/** The counts of a JetStream ack subject; undefined when `reply` is no such subject. */
export function deliveryCountsOf(reply: string): DeliveryCounts | undefined {
  const tokens = reply.split('.');
  if (tokens[0] !== '$JS' || tokens[1] !== 'ACK') return undefined;
  // Without the domain and account hash, every token after `$JS.ACK` sits two places earlier.
  const shift = tokens.length === 9 ? 2 : tokens.length >= 11 ? 0 : undefined;
  if (shift === undefined) return undefined;
  const deliveryCount = countOf(tokens[6 - shift]);
  const pending = countOf(tokens[10 - shift]);
  return deliveryCount !== undefined && deliveryCount > 0 && pending !== undefined ? { deliveryCount, pending } : undefined;
}

const DIGITS = /^\d{1,15}$/;

/** A token of decimal digits as its number; undefined for anything else (an empty token too). */
function countOf(token: string | undefined): number | undefined {
  return token !== undefined && DIGITS.test(token) ? Number(token) : undefined;
}
