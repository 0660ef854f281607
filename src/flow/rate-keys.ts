import { createHash } from 'node:crypto';

/**
 * Keys of the rate-limit bucket. A NATS KV key is `.`-separated tokens of `[-/_=A-Za-z0-9]`,
 * while function names come as `name.namespace` and caller keys (`X-Concurrency-Key`) may hold
 * anything. Each part becomes exactly ONE token, so the token count tells the kinds apart:
 *
 *   fn.<namespace>.<name>                  a function's limit          e.g. fn.openfaas-fn.echo
 *   key.<namespace>.<name>.<caller key>    one caller key's limit      e.g. key.openfaas-fn.echo.tenant-42
 *
 * A part made of `[-_A-Za-z0-9]` (every DNS label, most tenant ids), 1–64 characters, is kept as
 * it is, so `nats kv ls asyncfn_rate_limits` stays readable. Anything else is `=` + base64url of
 * its UTF-8 bytes when that fits in 64 characters, else `/` + the base64url SHA-256 of it (long
 * keys hash; 2⁻¹²⁸ collisions are not a concern). `=` and `/` never occur in a kept part or in
 * base64url, so the three forms cannot collide.
 */

/** A valid key of the rate-limit bucket; only {@link functionRateKey} and {@link callerRateKey} make one. */
export type RateLimitKey = string & { readonly __rateLimitKey: true };

/** A function as the limiter sees it (src/functions' FunctionRef has this shape). */
export interface RateLimitedFunction {
  readonly name: string;
  readonly namespace: string;
}

const MAX_PART = 64;
const PLAIN = /^[-\w]+$/;

/** One KV key token for any string (see the module comment). */
export function kvKeyToken(part: string): string {
  if (part.length <= MAX_PART && PLAIN.test(part)) return part;
  const encoded = Buffer.from(part, 'utf8').toString('base64url');
  if (encoded.length > 0 && encoded.length <= MAX_PART) return `=${encoded}`;
  return `/${createHash('sha256').update(part, 'utf8').digest('base64url')}`;
}

/** The key of a function's own limit (`com.asyncfn.rate_limit`). */
export function functionRateKey(fn: RateLimitedFunction): RateLimitKey {
  return `fn.${kvKeyToken(fn.namespace)}.${kvKeyToken(fn.name)}` as RateLimitKey;
}

/** The key of one caller key's limit on a function (`com.asyncfn.key_rate_limit` and `X-Concurrency-Key`). */
export function callerRateKey(fn: RateLimitedFunction, callerKey: string): RateLimitKey {
  return `key.${kvKeyToken(fn.namespace)}.${kvKeyToken(fn.name)}.${kvKeyToken(callerKey)}` as RateLimitKey;
}
