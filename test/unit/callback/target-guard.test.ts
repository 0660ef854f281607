import type { LookupAddress, LookupOptions } from 'node:dns';
import t from 'tap';
import {
  CallbackRefusedError,
  classifyAddress,
  compileAllowList,
  createTargetGuard,
  embeddedIpv4,
  ipLiteralOf,
  type AddressClass,
  type ResolveAll,
} from '../../../src/callback/target-guard.js';
import { callbackUrlFrom } from '../../../src/gateway/invocation-target.js';

t.test('addresses are classified by the special-purpose registries; IPv4 inside IPv6 counts as IPv4', async (t) => {
  const table: Array<[string, AddressClass]> = [
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.5', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'sharedNat'],
    ['100.127.255.255', 'sharedNat'],
    ['100.128.0.1', 'public'],
    ['192.0.2.10', 'documentation'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.170', 'reserved'],
    ['192.88.99.1', 'reserved'],
    ['2606:4700:4700::1111', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a00:1', 'private'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::a00:1', 'private'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::808:808', 'public'],
    ['64:ff9b:1::1', 'private'],
    ['2002:a9fe:a9fe::1', 'linkLocal'],
    ['2002:808:808::1', 'public'],
    ['::127.0.0.1', 'reserved'],
    ['fc00::1', 'private'],
    ['fd00:ec2::254', 'private'],
    ['fe80::1', 'linkLocal'],
    ['fec0::1', 'reserved'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['3fff::1', 'documentation'],
    ['2001::1', 'reserved'],
    ['2001:2::1', 'benchmarking'],
    ['100::1', 'reserved'],
    ['5f00::1', 'reserved'],
    ['4000::1', 'reserved'],
  ];
  for (const [address, cls] of table) t.equal(classifyAddress(address), cls, address);
  t.throws(() => classifyAddress('localhost'), TypeError);
});

t.test('embedded IPv4: mapped, NAT64 and 6to4 forms, in hex or dotted notation', async (t) => {
  t.equal(embeddedIpv4('::ffff:10.0.0.1'), '10.0.0.1');
  t.equal(embeddedIpv4('::ffff:a00:1'), '10.0.0.1');
  t.equal(embeddedIpv4('0:0:0:0:0:ffff:7f00:1'), '127.0.0.1');
  t.equal(embeddedIpv4('64:ff9b::192.168.0.1'), '192.168.0.1');
  t.equal(embeddedIpv4('2002:c0a8:1::'), '192.168.0.1');
  t.equal(embeddedIpv4('2606:4700::1'), undefined);
  t.equal(embeddedIpv4('10.0.0.1'), undefined);
});

t.test('WHATWG URL parsing normalises the tricky host forms before the guard sees them', async (t) => {
  const hostOf = (url: string): string => new URL(callbackUrlFrom(url)!).hostname;
  const table: Array<[string, string, AddressClass]> = [
    ['http://2130706433/', '127.0.0.1', 'loopback'],
    ['http://0177.0.0.1/', '127.0.0.1', 'loopback'],
    ['http://0x7f.1/', '127.0.0.1', 'loopback'],
    ['http://127.1/', '127.0.0.1', 'loopback'],
    ['http://0/', '0.0.0.0', 'unspecified'],
    ['http://[::1]:8080/', '::1', 'loopback'],
    ['http://[0:0:0:0:0:0:0:1]/', '::1', 'loopback'],
    ['http://[::ffff:10.0.0.1]/', '::ffff:a00:1', 'private'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'linkLocal'],
    ['http://[fd00:ec2::254]/', 'fd00:ec2::254', 'private'],
  ];
  for (const [url, literal, cls] of table) {
    t.equal(ipLiteralOf(hostOf(url)), literal, url);
    t.equal(classifyAddress(literal), cls, `${url} is ${cls}`);
  }
  t.equal(ipLiteralOf('localhost'), undefined);
  t.equal(ipLiteralOf('hooks.example.com'), undefined);
});

t.test('the allowlist matches names, *.suffixes, IPs and CIDRs', async (t) => {
  const allow = compileAllowList(['hooks.internal', '*.svc.cluster.local', '10.1.0.0/16', '::1', '192.168.7.7', 'fd00::/8']);
  t.ok(allow.allowsHost('hooks.internal'));
  t.ok(allow.allowsHost('HOOKS.Internal.'), 'case and a trailing dot do not matter');
  t.notOk(allow.allowsHost('evil-hooks.internal'));
  t.ok(allow.allowsHost('receiver.team.svc.cluster.local'));
  t.ok(allow.allowsHost('a.b.svc.cluster.local'));
  t.notOk(allow.allowsHost('svc.cluster.local'), '*.suffix does not match the bare suffix');
  t.notOk(allow.allowsHost('xsvc.cluster.local'));
  t.ok(allow.allowsAddress('10.1.2.3'));
  t.notOk(allow.allowsAddress('10.2.0.1'));
  t.ok(allow.allowsAddress('::ffff:10.1.2.3'), 'the IPv4 inside a mapped address is matched');
  t.ok(allow.allowsAddress('::1'));
  t.ok(allow.allowsAddress('192.168.7.7'));
  t.notOk(allow.allowsAddress('192.168.7.8'));
  t.ok(allow.allowsAddress('fd12::1'));
  t.notOk(allow.allowsAddress('fc00::1'));
  t.notOk(compileAllowList([]).allowsAddress('127.0.0.1'));
});

/** A resolver answering from a table; records what it was asked. */
function fakeResolve(table: Record<string, string[]>, asked: string[] = []): ResolveAll {
  return async (host: string, _options: LookupOptions): Promise<LookupAddress[]> => {
    asked.push(host);
    const addresses = table[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

t.test('refusals name the address, what it is, and how to allow it', async (t) => {
  const guard = createTargetGuard([]);
  const literal = guard.refusal('10.0.0.5', '10.0.0.5');
  t.type(literal, CallbackRefusedError);
  t.equal(literal?.message, 'callback target refused: 10.0.0.5 is a private address (not in callback_allow)');
  t.equal(literal?.code, 'ASYNCFN_ERR_CALLBACK_REFUSED');
  t.equal(literal?.httpStatus, 400);
  t.equal(
    guard.refusal('metadata.internal', '169.254.169.254')?.message,
    'callback target refused: metadata.internal resolves to 169.254.169.254, a link-local address (not in callback_allow)',
  );
  t.equal(guard.refusal('example.com', '93.184.215.14'), undefined);
  t.equal(createTargetGuard(['hooks.internal']).refusal('hooks.internal', '10.0.0.5'), undefined, 'an allowed name may resolve anywhere');
  t.equal(createTargetGuard(['10.0.0.0/8']).refusal('x.test', '10.0.0.5'), undefined, 'an allowed range');
});

t.test('submit-time check: literals without DNS, names by every address, failures and slowness pass', async (t) => {
  const asked: string[] = [];
  const resolve = fakeResolve({ localhost: ['127.0.0.1', '::1'], 'mixed.test': ['10.0.0.1', '93.184.215.14'], 'public.test': ['93.184.215.14'] }, asked);
  const guard = createTargetGuard([], resolve);
  const check = (url: string) => guard.check(new URL(url), 1_000);

  t.match(await check('http://10.0.0.5:8080/hook'), { message: /10\.0\.0\.5 is a private address/ });
  t.match(await check('http://[::1]/'), { message: /::1 is a loopback address/ });
  t.match(await check('http://2130706433/'), { message: /127\.0\.0\.1 is a loopback address/ });
  t.equal(await check('http://93.184.215.14/'), undefined);
  t.same(asked, [], 'IP literals need no lookup');

  t.match(await check('http://localhost:8888/'), { message: /localhost resolves to 127\.0\.0\.1, a loopback address/ });
  t.equal(await check('http://mixed.test/'), undefined, 'one allowed address is enough: delivery connects only to it');
  t.equal(await check('http://public.test/'), undefined);
  t.equal(await check('http://nxdomain.test/'), undefined, 'a name that does not resolve is left to delivery');

  const never: ResolveAll = () => new Promise(() => undefined);
  const started = performance.now();
  t.equal(await createTargetGuard([], never).check(new URL('http://slow.test/'), 50), undefined, 'a slow lookup passes');
  t.ok(performance.now() - started < 1_000, 'after the timeout');

  const allowed = createTargetGuard(['localhost', '10.0.0.0/8'], resolve);
  t.equal(await allowed.check(new URL('http://localhost:8888/'), 1_000), undefined);
  t.equal(await allowed.check(new URL('http://10.0.0.5/'), 1_000), undefined);
});

t.test('submit-time check: a remembered literal keeps its verdict, refusals stay refusals', async (t) => {
  const guard = createTargetGuard(['10.0.0.0/8'], fakeResolve({}, []));
  for (let i = 0; i < 3; i++) {
    t.equal(await guard.check(new URL('http://10.1.2.3/hook'), 1_000), undefined, `allowed literal, check ${i + 1}`);
    t.match(await guard.check(new URL('http://127.0.0.1/hook'), 1_000), { message: /127\.0\.0\.1 is a loopback address/ }, `refused literal, check ${i + 1}`);
  }
  // More allowed literals than are remembered: the set starts over, verdicts stay right.
  const refusedWrongly: string[] = [];
  for (let i = 0; i < 1_100; i++) {
    const url = `http://10.0.${i >> 8}.${i & 0xff}/`;
    if ((await guard.check(new URL(url), 1_000)) !== undefined) refusedWrongly.push(url);
  }
  t.same(refusedWrongly, [], '1,100 allowed literals, all allowed');
  t.match(await guard.check(new URL('http://192.168.0.1/'), 1_000), { message: /a private address/ });
});

t.test('allowed(href): only URLs check allowed on grounds that cannot change', async (t) => {
  const guard = createTargetGuard(['10.0.0.0/8', 'hooks.test'], fakeResolve({ 'public.test': ['93.184.216.34'] }, []));
  const literal = 'http://10.1.2.3/hook';
  t.notOk(guard.allowed(literal), 'nothing before a check');
  t.equal(await guard.check(new URL(literal), 1_000), undefined);
  t.ok(guard.allowed(literal), 'an allowed IP literal');
  t.notOk(guard.allowed('http://10.1.2.3/other'), 'another URL on the same host is another URL');
  t.equal(await guard.check(new URL('http://hooks.test:9000/cb'), 1_000), undefined);
  t.ok(guard.allowed('http://hooks.test:9000/cb'), 'a listed name');
  t.ok(await guard.check(new URL('http://127.0.0.1/hook'), 1_000), 'refused');
  t.notOk(guard.allowed('http://127.0.0.1/hook'), 'a refused literal is never allowed');
  t.equal(await guard.check(new URL('http://public.test/cb'), 1_000), undefined);
  t.notOk(guard.allowed('http://public.test/cb'), 'a name allowed by what it resolves to now is checked again next time');
});

/** Calls a guard's lookup as net.connect would, with or without `all`. */
function lookupOnce(
  guard: ReturnType<typeof createTargetGuard>,
  host: string,
  options: LookupOptions,
): Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number | undefined }> {
  return new Promise((resolve) => guard.lookup(host, options, (err, address, family) => resolve({ err, address, family })));
}

t.test('connect-time lookup drops refused addresses and fails when none is left', async (t) => {
  const guard = createTargetGuard([], fakeResolve({ localhost: ['127.0.0.1', '::1'], 'mixed.test': ['10.0.0.1', '93.184.215.14', '::1'] }));

  const all = await lookupOnce(guard, 'mixed.test', { all: true });
  t.equal(all.err, null);
  t.same(all.address, [{ address: '93.184.215.14', family: 4 }], 'only the public address is left to connect to');

  const one = await lookupOnce(guard, 'mixed.test', {});
  t.same([one.err, one.address, one.family], [null, '93.184.215.14', 4]);

  const refused = await lookupOnce(guard, 'localhost', { all: true });
  t.type(refused.err, CallbackRefusedError);
  t.match(refused.err?.message, /localhost resolves to 127\.0\.0\.1, a loopback address/);

  const missing = await lookupOnce(guard, 'nxdomain.test', {});
  t.equal(missing.err?.code, 'ENOTFOUND', "the resolver's own error passes through");

  const allowed = createTargetGuard(['127.0.0.0/8'], fakeResolve({ localhost: ['127.0.0.1', '::1'] }));
  t.same((await lookupOnce(allowed, 'localhost', { all: true })).address, [{ address: '127.0.0.1', family: 4 }], '::1 is not in the list');
});
