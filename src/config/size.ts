/**
 * Byte sizes such as `max_body_size`: a bare number of bytes ("1048576"), or a number with a
 * decimal (KB, MB, GB, TB: powers of 1000) or binary (KiB, MiB, GiB, TiB: powers of 1024) unit.
 * Single-letter units ("1M") are refused because tools disagree on whether they mean 1000² or
 * 1024², and a body limit that is off by 5% is a confusing bug to chase.
 */

/** Bytes per unit, keyed in lower case because unit matching ignores case ("1mib" = "1MiB"). */
const BYTES_PER_UNIT: Readonly<Record<string, bigint>> = {
  '': 1n,
  b: 1n,
  kb: 1_000n,
  mb: 1_000n ** 2n,
  gb: 1_000n ** 3n,
  tb: 1_000n ** 4n,
  kib: 1_024n,
  mib: 1_024n ** 2n,
  gib: 1_024n ** 3n,
  tib: 1_024n ** 4n,
};

/** A decimal number, then optional spaces, then an optional unit made of letters. */
const SIZE = /^(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)$/i;

/**
 * Parses a size and returns it in bytes.
 *
 * Returns undefined if the text is not a size, if the unit is unknown, if the result is not a
 * whole number of bytes ("1.5B"), or if it exceeds Number.MAX_SAFE_INTEGER. Fractions that come
 * out whole are fine ("1.5KiB" = 1536). The arithmetic is exact (BigInt), so "1.1KB" is 1100.
 */
export function parseSizeBytes(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (match === null) return undefined;
  const [, amount = '', unit = ''] = match;
  const multiplier = BYTES_PER_UNIT[unit.toLowerCase()];
  if (multiplier === undefined) return undefined;

  const [whole = '', fraction = ''] = amount.split('.');
  const scaled = BigInt(`${whole}${fraction}`) * multiplier;
  const divisor = 10n ** BigInt(fraction.length);
  if (scaled % divisor !== 0n) return undefined;
  const bytes = scaled / divisor;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(bytes);
}
