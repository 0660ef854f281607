/**
 * Durations as OpenFaaS writes them: Go's `time.ParseDuration` syntax ("60s", "1m30s", "500ms",
 * "1.5h"), or a bare number of seconds ("60", "0.5"), which the OpenFaaS docs also use for
 * timeouts. Arithmetic is done on BigInt nanoseconds, as Go does, so "1.1s" is exactly 1100 ms
 * instead of 1100.0000000000002.
 */

/** Nanoseconds per unit; the same unit names Go accepts (µ as U+00B5 and μ as U+03BC). */
const NS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** Go rejects durations above the int64 nanosecond range (about 292 years); so do we. */
const MAX_NS = 2n ** 63n - 1n;

/** A number with at least one digit ("1", "1.", "1.5", ".5"), as Go's parser allows. */
const NUMBER = String.raw`(?:\d+(?:\.\d*)?|\.\d+)`;
const BARE_SECONDS = new RegExp(`^${NUMBER}$`);
const WHOLE = new RegExp(`^(?:${NUMBER}(?:ns|us|µs|μs|ms|s|m|h))+$`);
const PART = new RegExp(`(${NUMBER})(ns|us|µs|μs|ms|s|m|h)`, 'g');

/**
 * Parses a duration and returns it in milliseconds (fractional below 1 ms, e.g. "500us" → 0.5).
 *
 * Returns undefined for anything that is not a duration, including negative durations: no
 * setting in asyncfn means anything with a negative time. A leading "+" is accepted, as in Go.
 */
export function parseDurationMs(text: string): number | undefined {
  let body = text.trim();
  if (body.startsWith('+')) body = body.slice(1);
  if (BARE_SECONDS.test(body)) body += 's';
  if (!WHOLE.test(body)) return undefined;

  let totalNs = 0n;
  for (const [, amount, unit] of body.matchAll(PART)) {
    totalNs += scaledTruncated(amount!, NS_PER_UNIT[unit!]!);
  }
  if (totalNs > MAX_NS) return undefined;
  return Number(totalNs) / 1_000_000;
}

/** `amount × multiplier` for a decimal `amount`, dropping any fraction of a nanosecond (as Go does). */
function scaledTruncated(amount: string, multiplier: bigint): bigint {
  const [whole = '', fraction = ''] = amount.split('.');
  const digits = BigInt(`${whole}${fraction}`);
  return (digits * multiplier) / 10n ** BigInt(fraction.length);
}
