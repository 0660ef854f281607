import t from 'tap';
import { connectionOptions, durationSeconds, endToEndHeaders, isForwardable, isHopByHop, toHeaderRecord, unixNanos } from '../../../src/http/headers.js';

t.test('hop-by-hop headers are dropped, end-to-end ones kept with every value', async (t) => {
  const pairs = endToEndHeaders({
    Host: 'gw',
    connection: 'keep-alive',
    'transfer-encoding': 'chunked',
    'content-length': '5',
    'X-Custom': 'a',
    'set-cookie': ['a=1', 'b=2'],
    absent: undefined,
  });
  t.same(pairs, [
    ['x-custom', 'a'],
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
  ]);
  t.ok(isHopByHop('Upgrade'));
  t.notOk(isHopByHop('content-type'));
});

t.test('the same names read again are dropped or kept as the first time, in any case', async (t) => {
  // Names are kept with what was decided for them (bounded): what was kept must stand for the same name only.
  for (const round of [1, 2]) {
    const pairs = endToEndHeaders({ 'X-Custom': 'a', 'x-custom-2': 'b', Upgrade: 'h2c', 'TRANSFER-ENCODING': 'chunked', 'Proxy-Foo': 'p' });
    t.same(
      pairs,
      [
        ['x-custom', 'a'],
        ['x-custom-2', 'b'],
      ],
      `round ${round}`,
    );
  }
});

t.test('pairs become a header record with repeated names as arrays', async (t) => {
  t.same(
    toHeaderRecord([
      ['a', '1'],
      ['b', '2'],
      ['a', '3'],
      ['a', '4'],
    ]),
    { a: ['1', '3', '4'], b: '2' },
  );
  const named = toHeaderRecord([
    ['constructor', 'c'],
    ['__proto__', 'p'],
    ['tostring', 't'],
  ]);
  t.same(
    Object.entries(named),
    [
      ['constructor', 'c'],
      ['__proto__', 'p'],
      ['tostring', 't'],
    ],
    "names Object's own properties have are headers like any other",
  );
  t.same(
    toHeaderRecord(
      [
        ['host', 'evil.example'],
        ['x-a', '1'],
        ['asyncfn-call-id', 'x'],
      ],
      isForwardable,
    ),
    { 'x-a': '1' },
    'only the names `keep` keeps',
  );
});

t.test('times are written as OpenFaaS writes them', async (t) => {
  t.equal(unixNanos(1_700_000_000_123), '1700000000123000000');
  t.equal(durationSeconds(1234.5678), '1.234568');
  t.equal(durationSeconds(0), '0.000000');
});

t.test('headers named in Connection, every Proxy-* and Proxy itself are hop-by-hop too', async (t) => {
  const incoming = {
    connection: 'keep-alive, X-Named-One ,x-named-two',
    'x-named-one': 'a',
    'x-named-two': 'b',
    'proxy-authorization': 'Basic x',
    'proxy-whatever': 'c',
    proxy: 'http://attacker.test',
    'x-proxy': 'kept',
    'x-kept': 'kept',
  };
  t.same([...connectionOptions(incoming)], ['keep-alive', 'x-named-one', 'x-named-two']);
  t.same([...connectionOptions({ connection: ['close', 'X-A'] })], ['close', 'x-a'], 'repeated Connection headers');
  t.same([...connectionOptions({})], []);
  t.same(endToEndHeaders(incoming), [
    ['x-proxy', 'kept'],
    ['x-kept', 'kept'],
  ]);
  // The common values take a shortcut; every other value still names headers.
  for (const connection of ['keep-alive', 'close']) {
    const headers = { connection, 'x-named': 'n', 'keep-alive': 'timeout=5', 'x-kept': 'k' };
    t.same(
      endToEndHeaders(headers),
      [
        ['x-named', 'n'],
        ['x-kept', 'k'],
      ],
      `Connection: ${connection}`,
    );
  }
  for (const connection of ['Keep-Alive, x-named', 'x-named', 'close,x-named']) {
    const headers = { connection, 'x-named': 'dropped', 'keep-alive': 'timeout=5', 'x-kept': 'k' };
    t.same(endToEndHeaders(headers), [['x-kept', 'k']], `Connection: ${connection}`);
  }
  t.ok(isHopByHop('Proxy-Anything'));
  t.ok(isHopByHop('proxy'));
  t.notOk(isHopByHop('x-proxy'));
});
