import t from 'tap';
import { Counter, Histogram, Registry } from 'prom-client';
import { BoundCounter, BoundHistogram } from '../../../src/telemetry/bound-metrics.js';

const BUCKETS = [0.005, 0.01, 0.1, 1, 10];
/** Values on, between, below and past the bounds, and repeated label sets in a mixed order. */
const OBSERVATIONS: Array<[{ route: string; code: string }, number]> = [
  [{ route: '/a', code: '202' }, 0.004],
  [{ route: '/a', code: '202' }, 0.005],
  [{ route: '/b', code: '500' }, 0.25],
  [{ route: '/a', code: '202' }, 0.0101],
  [{ route: '/a', code: '503' }, 12],
  [{ route: '/b', code: '500' }, 1],
  [{ route: '/a', code: '202' }, 0],
  [{ route: '/a', code: '503' }, 10],
];

/** Two registries with the same default labels: prom-client's own metrics in one, the bound ones in the other. */
function registries(): { plain: Registry; bound: Registry } {
  const plain = new Registry();
  const bound = new Registry();
  for (const r of [plain, bound]) r.setDefaultLabels({ component: 'test' });
  return { plain, bound };
}

t.test('a bound histogram writes what prom-client Histogram writes for the same observations', async (t) => {
  const { plain, bound } = registries();
  const config = { name: 'x_seconds', help: 'help text', labelNames: ['route', 'code'] as const, buckets: BUCKETS };
  const reference = new Histogram({ ...config, registers: [plain] });
  const histogram = new BoundHistogram({ ...config, registers: [bound] });
  const children = new Map<string, ReturnType<typeof histogram.child>>();
  for (const [labels, value] of OBSERVATIONS) {
    reference.observe(labels, value);
    const key = `${labels.route} ${labels.code}`;
    if (!children.has(key)) children.set(key, histogram.child(labels));
    children.get(key)!.observe(value);
  }
  t.equal(await bound.metrics(), await plain.metrics(), 'the same exposition text');
  t.same(await bound.getMetricsAsJSON(), await plain.getMetricsAsJSON(), 'the same JSON');

  reference.reset();
  histogram.reset();
  t.equal(await bound.metrics(), await plain.metrics(), 'the same after a reset (no series left)');
});

t.test('a child made but never observed writes no series, as prom-client writes none before an observation', async (t) => {
  const { plain, bound } = registries();
  const config = { name: 'y_seconds', help: 'h', labelNames: ['route'] as const, buckets: BUCKETS };
  new Histogram({ ...config, registers: [plain] });
  new BoundHistogram({ ...config, registers: [bound] }).child({ route: '/never' });
  t.equal(await bound.metrics(), await plain.metrics());
});

t.test('a bound histogram refuses what prom-client refuses', async (t) => {
  const registry = new Registry();
  const histogram = new BoundHistogram({ name: 'z_seconds', help: 'h', labelNames: ['route'], buckets: BUCKETS, registers: [registry] });
  t.throws(() => histogram.child({ other: 'x' } as never), /not included in initial labelset/, 'an undeclared label');
  const child = histogram.child({ route: '/a' });
  t.throws(() => child.observe(Number.NaN), /not a valid number/, 'NaN');
  t.throws(() => child.observe(Number.POSITIVE_INFINITY), /not a valid number/, 'Infinity');
  t.throws(() => new BoundHistogram({ name: 'w', help: 'h', labelNames: ['le'], buckets: BUCKETS, registers: [] }), /reserved/, 'the le label');
  t.throws(() => new BoundHistogram({ name: 'v', help: 'h', labelNames: [], buckets: [1, 1], registers: [] }), /ascending/, 'buckets not ascending');
  t.throws(
    () => new BoundHistogram({ name: 'z_seconds', help: 'h', labelNames: [], buckets: BUCKETS, registers: [registry] }),
    /already been registered/,
    'a name taken',
  );
});

t.test('a bound counter writes what prom-client Counter writes, its counts added when the registry is read', async (t) => {
  const { plain, bound } = registries();
  const config = { name: 'x_total', help: 'help text', labelNames: ['route', 'code'] as const };
  const reference = new Counter({ ...config, registers: [plain] });
  const counter = new BoundCounter({ ...config, registers: [bound] });
  const children = new Map<string, ReturnType<typeof counter.child>>();
  const countAll = (): void => {
    for (const [labels, value] of OBSERVATIONS) {
      const by = Math.round(value);
      reference.inc(labels, by);
      const key = `${labels.route} ${labels.code}`;
      if (!children.has(key)) children.set(key, counter.child(labels));
      children.get(key)!.inc(by);
    }
  };
  countAll();
  t.equal(await bound.metrics(), await plain.metrics(), 'the same exposition text');
  countAll();
  t.equal(await bound.metrics(), await plain.metrics(), 'read again after more counts: each count added once');
  t.equal(await bound.metrics(), await plain.metrics(), 'read twice with nothing new: nothing added twice');
  children.get('/a 202')!.inc();
  reference.inc({ route: '/a', code: '202' });
  t.equal(await bound.metrics(), await plain.metrics(), 'inc() adds 1');
});

t.test('a label set has one child, however it is asked for; inc() and observe() with labels use it', async (t) => {
  const registry = new Registry();
  const counter = new BoundCounter({ name: 'c_total', help: 'h', labelNames: ['a', 'b'], registers: [registry] });
  const histogram = new BoundHistogram({ name: 'h_seconds', help: 'h', labelNames: ['a', 'b'], buckets: BUCKETS, registers: [registry] });
  t.equal(counter.child({ a: '1', b: '2' }), counter.child({ b: '2', a: '1' }), 'the same counter child, in any key order');
  t.not(counter.child({ a: '1', b: '2' }), counter.child({ a: '12', b: '' }), 'values are not run together');
  t.equal(histogram.child({ a: '1', b: '2' }), histogram.child({ b: '2', a: '1' }), 'the same histogram child');
  counter.child({ a: '1', b: '2' }).inc(2);
  counter.inc({ a: '1', b: '2' });
  histogram.child({ a: '1', b: '2' }).observe(0.5);
  histogram.observe({ b: '2', a: '1' }, 0.5);
  const text = await registry.metrics();
  t.match(text, /^c_total\{a="1",b="2"\} 3$/m, 'one series, 3');
  t.match(text, /^h_seconds_count\{a="1",b="2"\} 2$/m, 'one series, 2 observations');
  t.equal(text.match(/^h_seconds_sum/gm)?.length, 1, 'one histogram series');
  t.same((await counter.get()).values.find((v) => v.labels.a === '1' && v.labels.b === '2')?.value, 3, 'get() counts what was added');
});

t.test('a bound counter refuses to go down, and refuses labels prom-client refuses', async (t) => {
  const counter = new BoundCounter({ name: 'y_total', help: 'h', labelNames: ['route'], registers: [new Registry()] });
  t.throws(() => counter.child({ other: 'x' } as never), /not included in initial labelset/);
  const child = counter.child({ route: '/a' });
  t.throws(() => child.inc(-1), /only goes up/);
  t.throws(() => child.inc(Number.NaN), /only goes up/);
});
