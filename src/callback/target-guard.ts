import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { AsyncFnError } from '../errors.js';

/**
 * The callback SSRF guard. Callers choose X-Callback-Url, so without it the worker would POST
 * wherever they point it: the cloud metadata service, a database on the pod network, a port on
 * localhost. Every address a callback connects to is classified (the resolved address, not the
 * host string, and at connect time, so DNS rebinding between a check and the connect is
 * impossible); special-purpose addresses are refused unless `callback_allow` names them.
 */

/** What kind of address this is; everything but `public` is refused unless allowed. */
export type AddressClass =
  'public' | 'unspecified' | 'loopback' | 'private' | 'linkLocal' | 'sharedNat' | 'multicast' | 'broadcast' | 'documentation' | 'benchmarking' | 'reserved';

/** How a refusal names each class: "10.0.0.5 is a private address". */
const DESCRIPTIONS: Record<Exclude<AddressClass, 'public'>, string> = {
  unspecified: 'an unspecified ("this network") address',
  loopback: 'a loopback address',
  private: 'a private address',
  linkLocal: 'a link-local address',
  sharedNat: 'a shared (carrier-grade NAT) address',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
  documentation: 'a documentation address',
  benchmarking: 'a benchmarking address',
  reserved: 'a reserved address',
};

// IANA's IPv4 and IPv6 special-purpose address registries, the ranges not globally reachable.
// Order matters: the first class whose ranges contain an address names it.
const IPV4_RANGES: ReadonlyArray<readonly [AddressClass, readonly string[]]> = [
  ['unspecified', ['0.0.0.0/8']],
  ['loopback', ['127.0.0.0/8']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']],
  // 169.254.169.254 is the metadata service of AWS, GCP, Azure and most other clouds.
  ['linkLocal', ['169.254.0.0/16']],
  ['sharedNat', ['100.64.0.0/10']],
  ['documentation', ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']],
  ['benchmarking', ['198.18.0.0/15']],
  ['multicast', ['224.0.0.0/4']],
  ['broadcast', ['255.255.255.255/32']],
  // IETF protocol assignments, the deprecated 6to4 relay anycast, and the old class E.
  ['reserved', ['192.0.0.0/24', '192.88.99.0/24', '240.0.0.0/4']],
];

const IPV6_RANGES: ReadonlyArray<readonly [AddressClass, readonly string[]]> = [
  ['unspecified', ['::/128']],
  ['loopback', ['::1/128']],
  // fc00::/7 holds fd00:ec2::254, the AWS metadata service over IPv6.
  ['private', ['fc00::/7', '64:ff9b:1::/48']],
  ['linkLocal', ['fe80::/10']],
  ['documentation', ['2001:db8::/32', '3fff::/20']],
  ['benchmarking', ['2001:2::/48']],
  ['multicast', ['ff00::/8']],
  // IPv4-compatible and other ::/8 forms, discard-only, IETF assignments (Teredo among them),
  // SRv6 SIDs and the deprecated site-local range.
  ['reserved', ['::/8', '100::/64', '2001::/23', '5f00::/16', 'fec0::/10']],
];

/** IPv6 outside global unicast (2000::/3) is unassigned, hence refused, apart from the IPv4 embeddings. */
const GLOBAL_UNICAST = blockListOf(['2000::/3'], 'ipv6');

function blockListOf(cidrs: readonly string[], type: 'ipv4' | 'ipv6'): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [network = '', prefix = ''] = cidr.split('/');
    list.addSubnet(network, Number(prefix), type);
  }
  return list;
}

const compile = (ranges: typeof IPV4_RANGES, type: 'ipv4' | 'ipv6') => ranges.map(([cls, cidrs]) => [cls, blockListOf(cidrs, type)] as const);
const IPV4_LISTS = compile(IPV4_RANGES, 'ipv4');
const IPV6_LISTS = compile(IPV6_RANGES, 'ipv6');

/** An IP address without brackets, lower-case; undefined for anything else (a host name). */
export function ipLiteralOf(host: string): string | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return isIP(bare) === 0 ? undefined : bare.toLowerCase();
}

/** The eight 16-bit words of an IPv6 address (which may end in a dotted IPv4 quad). */
function ipv6Words(address: string): number[] {
  // "::ffff:1.2.3.4" → "::ffff:102:304", so only hex words remain.
  const text = address.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_, a: string, b: string, c: string, d: string) => `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`,
  );
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((word) => parseInt(word, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

const quad = (high: number, low: number): string => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;

/**
 * The IPv4 address an IPv6 address carries, where connecting to the IPv6 one reaches the IPv4 one:
 * IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
 */
export function embeddedIpv4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const w = ipv6Words(address);
  if (w.slice(0, 5).every((x) => x === 0) && w[5] === 0xffff) return quad(w[6]!, w[7]!);
  if (w[0] === 0x64 && w[1] === 0xff9b && w.slice(2, 6).every((x) => x === 0)) return quad(w[6]!, w[7]!);
  if (w[0] === 0x2002) return quad(w[1]!, w[2]!);
  return undefined;
}

/** Classifies an IP address (IPv4 or IPv6, no brackets); IPv4 carried in IPv6 is judged as IPv4. */
export function classifyAddress(address: string): AddressClass {
  const family = isIP(address);
  if (family === 0) throw new TypeError(`not an IP address: ${address}`);
  if (family === 4) return IPV4_LISTS.find(([, list]) => list.check(address, 'ipv4'))?.[0] ?? 'public';
  // ::ffff:127.0.0.1 reaches 127.0.0.1, so it is whatever 127.0.0.1 is.
  const inner = embeddedIpv4(address);
  if (inner !== undefined) return classifyAddress(inner);
  const special = IPV6_LISTS.find(([, list]) => list.check(address, 'ipv6'))?.[0];
  if (special) return special;
  return GLOBAL_UNICAST.check(address, 'ipv6') ? 'public' : 'reserved';
}

/** A callback target resolves only to refused addresses (HTTP 400 at submit; a dead letter at delivery). */
export class CallbackRefusedError extends AsyncFnError<'ASYNCFN_ERR_CALLBACK_REFUSED'> {
  constructor(
    readonly host: string,
    readonly address: string,
    readonly addressClass: Exclude<AddressClass, 'public'>,
  ) {
    const what = host === address ? `${address} is` : `${host} resolves to ${address},`;
    super('ASYNCFN_ERR_CALLBACK_REFUSED', [what, DESCRIPTIONS[addressClass]]);
  }
}

/** Lower-case, no brackets, no trailing dot: how host names are compared. */
function normalizeHost(host: string): string {
  const lower = host.toLowerCase().replace(/\.$/, '');
  return lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
}

/** `callback_allow` compiled: exact host names, `*.suffix` names, and IPs and CIDRs. */
export interface AllowList {
  /** True when the host name (as in the URL) is listed by name or `*.suffix`. */
  allowsHost(host: string): boolean;
  /** True when the address, or the IPv4 address it carries, is listed. */
  allowsAddress(address: string): boolean;
}

/** Compiles `callback_allow` entries, as validated by the config: `name`, `*.suffix`, IP or CIDR. */
export function compileAllowList(entries: readonly string[]): AllowList {
  const names = new Set<string>();
  const suffixes: string[] = [];
  const addresses = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address);
    if (family !== 0) {
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) addresses.addAddress(address, type);
      else addresses.addSubnet(address, Number(prefix), type);
    } else if (entry.startsWith('*.')) {
      // "*.svc.cluster.local" matches a.svc.cluster.local and deeper names, not svc.cluster.local.
      suffixes.push(normalizeHost(entry.slice(1)));
    } else {
      names.add(normalizeHost(entry));
    }
  }
  const listed = (address: string): boolean => addresses.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
  return {
    allowsHost: (host) => {
      const name = normalizeHost(host);
      return names.has(name) || suffixes.some((suffix) => name.endsWith(suffix));
    },
    allowsAddress: (address) => {
      if (listed(address)) return true;
      const inner = embeddedIpv4(address);
      return inner !== undefined && listed(inner);
    },
  };
}

/** Resolves a host name to every address, as `dns.lookup(host, { all: true })`. */
export type ResolveAll = (host: string, options: LookupOptions) => Promise<LookupAddress[]>;

const resolveWithDns: ResolveAll = (host, options) =>
  new Promise((resolve, reject) => dnsLookup(host, { ...options, all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

export interface TargetGuard {
  /** Why connecting to `address` (resolved from `host`, or `host` itself when a literal) is refused; undefined when allowed. */
  refusal(host: string, address: string): CallbackRefusedError | undefined;
  /**
   * A `lookup` for net.connect and tls.connect: resolves, drops every refused address, and fails
   * with CallbackRefusedError when none is left. Used at connect time, it checks the very
   * addresses the socket connects to.
   */
  readonly lookup: LookupFunction;
  /**
   * The submit-time check of a callback URL: a CallbackRefusedError when the host is a refused IP
   * literal or a name that resolves (within `timeoutMs`) only to refused addresses; undefined when
   * allowed or when resolution fails or is slow (delivery decides then).
   */
  check(url: URL, timeoutMs: number): Promise<CallbackRefusedError | undefined>;
  /**
   * True when `check` allowed this very URL (its `href`) before on grounds that cannot change (an
   * IP literal, a listed name): a caller may skip the check, its URL parse and its promise.
   */
  allowed(href: string): boolean;
}

/** The guard for `callback_allow` (see AllowList); `resolve` is dns.lookup unless a test swaps it. */
/** Allowed IP literals (and URLs) remembered by `check`; each set starts over when full. */
const MAX_REMEMBERED_LITERALS = 1_024;

export function createTargetGuard(allow: readonly string[], resolve: ResolveAll = resolveWithDns): TargetGuard {
  const allowList = compileAllowList(allow);
  const refusal = (host: string, address: string): CallbackRefusedError | undefined => {
    if (allowList.allowsHost(host)) return undefined;
    const cls = classifyAddress(address);
    if (cls === 'public' || allowList.allowsAddress(address)) return undefined;
    return new CallbackRefusedError(normalizeHost(host), address, cls);
  };

  const lookup: LookupFunction = (host, options, callback) => {
    resolve(host, options).then(
      (addresses) => {
        const refusals = addresses.map((a) => refusal(host, a.address));
        const allowed = addresses.filter((_, i) => refusals[i] === undefined);
        if (allowed.length === 0) {
          const first = refusals.find((r) => r !== undefined);
          const err = first ?? Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host });
          callback(err, options.all ? [] : '', undefined);
        } else if (options.all) {
          callback(null, allowed);
        } else {
          callback(null, allowed[0]!.address, allowed[0]!.family);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, options.all ? [] : '', undefined),
    );
  };

  // An IP literal's verdict depends only on the literal and the allow list: remembered, so a busy
  // gateway whose callers name the same few addresses pays no BlockList checks (each builds
  // SocketAddress objects) per request. Refusals are not remembered: they are rare, and their
  // error is built fresh each time.
  const allowedLiterals = new Set<string>();
  // The URLs allowed for good (by those literals, or by a listed name), as callers send them.
  const allowedUrls = new Set<string>();
  const remember = (set: Set<string>, value: string): void => {
    if (set.size >= MAX_REMEMBERED_LITERALS) set.clear();
    set.add(value);
  };
  const check = async (url: URL, timeoutMs: number): Promise<CallbackRefusedError | undefined> => {
    const host = normalizeHost(url.hostname);
    if (allowedLiterals.has(host) || allowList.allowsHost(host)) {
      remember(allowedUrls, url.href);
      return undefined;
    }
    const literal = ipLiteralOf(host);
    if (literal !== undefined) {
      const refused = refusal(host, literal);
      if (refused === undefined) {
        remember(allowedLiterals, host);
        remember(allowedUrls, url.href);
      }
      return refused;
    }
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<undefined>((resolveSlow) => {
      timer = setTimeout(() => resolveSlow(undefined), timeoutMs);
    });
    try {
      const addresses = await Promise.race([resolve(host, {}).catch(() => undefined), slow]);
      if (!addresses || addresses.length === 0) return undefined;
      const refusals = addresses.map((a) => refusal(host, a.address));
      return refusals.every((r) => r !== undefined) ? refusals[0] : undefined;
    } finally {
      clearTimeout(timer);
    }
  };

  return { refusal, lookup, check, allowed: (href) => allowedUrls.has(href) };
}
