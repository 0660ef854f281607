import { BadRequestError } from '../errors.js';
import { parseTimeoutMs } from '../functions/index.js';

/**
 * The optional asyncfn request headers of `POST /async-function/<name>`: an idempotency key, a
 * delay, asking for the result to be stored, and a time limit per call. Pure parsing; each bad
 * value is a 400 that says what was expected.
 */

type HeaderValue = string | string[] | undefined;

function single(name: string, value: HeaderValue): string | undefined {
  if (Array.isArray(value)) throw new BadRequestError(`${name} must be given once`);
  return value;
}

/** Printable ASCII, as the IETF Idempotency-Key draft and Stripe accept; 255 characters at most. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

/** `Idempotency-Key`, or undefined when absent. */
export function idempotencyKeyFrom(value: HeaderValue): string | undefined {
  const key = single('Idempotency-Key', value);
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) throw new BadRequestError('Idempotency-Key must be 1-255 printable ASCII characters');
  return key;
}

/** Printable ASCII, 1–255 characters: a tenant, a customer, an account id. */
const CONCURRENCY_KEY = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

/** `X-Concurrency-Key` (the invocation's flow-control key: its own lane and limits), or undefined when absent. */
export function concurrencyKeyFrom(value: HeaderValue): string | undefined {
  const key = single('X-Concurrency-Key', value);
  if (key === undefined) return undefined;
  if (!CONCURRENCY_KEY.test(key)) throw new BadRequestError('X-Concurrency-Key must be 1-255 printable ASCII characters');
  return key;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
/** IMF-fixdate, the HTTP-date form every server sends: "Sun, 06 Nov 1994 08:49:37 GMT". */
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * When the invocation may run, from `X-Delay-Seconds` (seconds from now, fractions allowed) or
 * `X-Not-Before` (RFC 3339 or HTTP-date): unix ms, or undefined for "now". A time in the past
 * means now. More than `maxDelayMs` ahead is refused: such a date is more likely a mistake.
 */
export function notBeforeFrom(delaySeconds: HeaderValue, notBefore: HeaderValue, nowMs: number, maxDelayMs: number): number | undefined {
  const delay = single('X-Delay-Seconds', delaySeconds);
  const date = single('X-Not-Before', notBefore);
  if (delay !== undefined && date !== undefined) throw new BadRequestError('give X-Delay-Seconds or X-Not-Before, not both');
  let atMs: number | undefined;
  if (delay !== undefined) {
    const seconds = /^\d+(\.\d+)?$/.test(delay.trim()) ? Number(delay) : Number.NaN;
    if (!Number.isFinite(seconds)) throw new BadRequestError('X-Delay-Seconds must be a number of seconds ≥ 0, e.g. 30 or 1.5');
    atMs = nowMs + Math.round(seconds * 1000);
  } else if (date !== undefined) {
    const text = date.trim();
    atMs = RFC3339.test(text) || HTTP_DATE.test(text) ? Date.parse(text) : Number.NaN;
    if (!Number.isFinite(atMs)) {
      throw new BadRequestError('X-Not-Before must be an RFC 3339 time (2026-11-22T18:00:00Z) or an HTTP-date (Sun, 22 Nov 2026 18:00:00 GMT)');
    }
  }
  if (atMs === undefined || atMs <= nowMs) return undefined;
  if (atMs - nowMs > maxDelayMs) {
    throw new BadRequestError(`the requested delay is longer than max_delay (${Math.round(maxDelayMs / 1000)} s)`);
  }
  return atMs;
}

/** `X-Store-Result: true` asks for the result to be kept for GET /async-function/<call-id>/result. */
export function storeResultFrom(value: HeaderValue): boolean {
  const text = single('X-Store-Result', value)?.trim().toLowerCase();
  if (text === undefined || text === 'false' || text === '0') return false;
  if (text === 'true' || text === '1') return true;
  throw new BadRequestError('X-Store-Result must be true or false');
}

/**
 * `X-Timeout` (a duration: "30s", "2m", "500ms" or bare seconds), ms; undefined when absent. The
 * worker applies it to each attempt, capped by the function's and the queue's limits
 * (src/functions/timeout.ts): the gateway does not know which worker's queue will run it.
 */
export function timeoutFrom(value: HeaderValue): number | undefined {
  const text = single('X-Timeout', value);
  if (text === undefined) return undefined;
  const ms = parseTimeoutMs(text);
  if (ms === undefined) throw new BadRequestError('X-Timeout must be a duration ≥ 1ms like 30s, 2m, 500ms or bare seconds');
  return ms;
}
