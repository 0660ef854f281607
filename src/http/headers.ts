import { BoundedMemo, shortKey } from '../bounded-memo.js';

/**
 * Headers that describe one hop, not the message: never forwarded by a proxy (RFC 9110 §7.6.1),
 * plus the ones the next hop computes itself (host, content-length).
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
]);

export type HeaderPairs = Array<[string, string]>;
export type IncomingHeaders = Record<string, string | string[] | undefined>;

/**
 * True for headers that must not be carried to the next hop: the fixed set, every `Proxy-*`, and
 * `Proxy` itself (never a real header; CGI-style code reads it as HTTP_PROXY: "httpoxy").
 */
export function isHopByHop(name: string): boolean {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || lower === 'proxy' || lower.startsWith('proxy-');
}

/**
 * Header namespaces a caller may not set: `Asyncfn-*` is the envelope's and `Nats-*` JetStream's
 * (Nats-Msg-Id, Nats-Expected-*). The envelope namespaces caller headers (Asyncfn-H-*), so they
 * could not collide anyway; dropping them keeps a function or a future reader of the envelope
 * from ever mistaking a caller's value for asyncfn's.
 */
/** True for header names in asyncfn's or NATS's namespaces (`Asyncfn-*`, `Nats-*`). */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('asyncfn-') || lower.startsWith('nats-');
}

/**
 * Whether a caller's header may reach a function: neither hop-by-hop nor reserved. The gateway
 * forwards only such headers; the worker checks the envelope's again, since a message in the
 * stream need not have come through a gateway.
 */
export function isForwardable(name: string): boolean {
  return !isHopByHop(name) && !isReservedHeader(name);
}

/**
 * Header names as received, each with its lower-case form, or null for a hop-by-hop header: every
 * request's headers go through here, and callers send the same few names.
 */
const END_TO_END = new BoundedMemo(
  (rawName: string) => {
    const name = rawName.toLowerCase();
    return isHopByHop(name) ? null : name;
  },
  { max: 1_024, keep: shortKey(128) },
);

/** Header names the Connection header lists: hop-by-hop for this message (RFC 9110 §7.6.1). */
export function connectionOptions(headers: IncomingHeaders): Set<string> {
  const named = new Set<string>();
  const value = headers['connection'];
  for (const list of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
    for (const token of list.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') named.add(name);
    }
  }
  return named;
}

/**
 * Node's header record as [name, value] pairs, lower-cased, hop-by-hop removed (including the
 * headers the Connection header names), repeated values kept; and, given `keep`, only the names
 * it keeps. Every async request runs this: one array out, nothing else per header.
 */
export function endToEndHeaders(headers: IncomingHeaders, keep?: (name: string) => boolean): HeaderPairs {
  const out: HeaderPairs = [];
  // "keep-alive" or "close" (both hop-by-hop anyway) is what nearly every request's Connection says: no set for it.
  const connection = headers['connection'];
  const named = connection === undefined || connection === 'keep-alive' || connection === 'close' ? undefined : connectionOptions(headers);
  for (const rawName of Object.keys(headers)) {
    const value = headers[rawName];
    if (value === undefined) continue;
    const name = END_TO_END.get(rawName);
    if (name === null || named?.has(name) === true || (keep !== undefined && !keep(name))) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, value]);
  }
  return out;
}

/**
 * Pairs to a header record for undici (only the names `keep` keeps, given one); repeated names
 * become arrays. The record has no prototype: a header named `constructor` or `__proto__` is a
 * header like any other, not Object's.
 */
export function toHeaderRecord(pairs: ReadonlyArray<readonly [string, string]>, keep?: (name: string) => boolean): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of pairs) {
    if (keep !== undefined && !keep(name)) continue;
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}

/** First value of a header from undici's or node's response headers. */
export function firstHeader(headers: IncomingHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Unix time in nanoseconds as a decimal string, as OpenFaaS writes X-Start-Time. */
export function unixNanos(ms: number): string {
  const whole = Math.round(ms);
  // Six zeros after a whole, positive ms: the same digits as BigInt arithmetic, without a BigInt.
  return whole > 0 && Number.isSafeInteger(whole) ? `${whole}000000` : (BigInt(whole) * 1_000_000n).toString();
}

/** Seconds with six decimals, as OpenFaaS writes X-Duration-Seconds (Go's %f). */
export function durationSeconds(ms: number): string {
  return (ms / 1000).toFixed(6);
}
