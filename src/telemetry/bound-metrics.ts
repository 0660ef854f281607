import {
  Counter,
  type CounterConfiguration,
  type LabelValues,
  type Metric,
  type MetricObjectWithValues,
  type MetricValue,
  type MetricValueWithName,
  type Registry,
} from 'prom-client';

/**
 * Counters and histograms with bound label sets, for metrics updated on every request.
 *
 * prom-client hashes the labels object on each `inc()` and `observe()` (a child from `labels()`
 * too) and builds a closure per observation: the gateway's five updates per `202` cost ~1.6 µs of
 * CPU together, 5 % of the request (BENCHMARKS.md, "The async request's per-202 work"). Here a
 * child is found once per label set and kept by the caller, and an update is an addition on it.
 * The exposition is prom-client's: a counter is a prom-client Counter that takes the counts when
 * the registry is read (its `collect`); a histogram writes the values prom-client's Histogram
 * writes (the test compares the two).
 */

export interface CounterChild {
  /** Adds 1, or `by` (≥ 0). */
  inc(by?: number): void;
}

export interface HistogramChild {
  /** Counts one observation (a finite number). */
  observe(value: number): void;
}

/** The key of a label set: its values in the metric's label order (JSON, so no two sets share one). */
function keyOf(labelNames: readonly string[], labels: object): string {
  return JSON.stringify(labelNames.map((name) => (labels as Record<string, unknown>)[name] ?? null));
}

/** A prom-client Counter whose children count in plain numbers until the registry is read. */
export class BoundCounter<L extends string> {
  readonly #counter: Counter<L>;
  readonly #labelNames: readonly L[];
  readonly #children = new Map<string, { readonly labels: LabelValues<L>; n: number; readonly handle: CounterChild }>();

  constructor(config: Omit<CounterConfiguration<L>, 'collect'>) {
    this.#labelNames = [...(config.labelNames ?? [])];
    const flush = (): void => {
      for (const child of this.#children.values()) {
        if (child.n === 0) continue;
        this.#counter.inc(child.labels, child.n);
        child.n = 0;
      }
    };
    this.#counter = new Counter<L>({ ...config, collect: flush });
  }

  /**
   * The child of `labels` (the same one each time; labels prom-client refuses throw). A caller that
   * updates it often keeps it: finding it builds a key.
   */
  child(labels: LabelValues<L>): CounterChild {
    const key = keyOf(this.#labelNames, labels);
    const known = this.#children.get(key);
    if (known !== undefined) return known.handle;
    const own = { ...labels };
    // Creates the series at 0, as a first inc() would, and throws now on a label prom-client refuses.
    this.#counter.inc(own, 0);
    const child = {
      labels: own,
      n: 0,
      handle: {
        inc: (by = 1) => {
          if (!(by >= 0)) throw new TypeError(`a counter only goes up: inc(${by})`);
          child.n += by;
        },
      },
    };
    this.#children.set(key, child);
    return child.handle;
  }

  /** Adds `by` (default 1) to the series of `labels`: for updates too rare to keep a child for. */
  inc(labels: LabelValues<L>, by = 1): void {
    this.child(labels).inc(by);
  }

  /** What prom-client's Counter gives, the counts so far included. */
  async get(): Promise<MetricObjectWithValues<MetricValue<L>>> {
    return this.#counter.get();
  }
}

export interface BoundHistogramConfiguration<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** Upper bounds, ascending. */
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

interface HistogramSeries<L extends string> {
  readonly labels: LabelValues<L>;
  /** Observations per bucket (not cumulative), the last one past every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** A histogram exposed as prom-client's Histogram exposes it, whose children observe without hashing labels. */
export class BoundHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly L[];
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, { readonly series: HistogramSeries<L>; readonly handle: HistogramChild }>();

  constructor(config: BoundHistogramConfiguration<L>) {
    if (config.buckets.some((bound, i) => i > 0 && bound <= config.buckets[i - 1]!)) throw new Error(`${config.name}: buckets must be ascending`);
    if (config.labelNames.includes('le' as L)) throw new Error('le is a reserved label keyword');
    this.name = config.name;
    this.help = config.help;
    this.labelNames = [...config.labelNames];
    this.#bounds = [...config.buckets];
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /**
   * The child of `labels` (the same one each time; an undeclared label throws). A caller that
   * observes often keeps it: finding it builds a key.
   */
  child(labels: LabelValues<L>): HistogramChild {
    const key = keyOf(this.labelNames, labels);
    const known = this.#series.get(key);
    if (known !== undefined) return known.handle;
    for (const name of Object.keys(labels)) {
      if (!this.labelNames.includes(name as L)) throw new Error(`Added label "${name}" is not included in initial labelset: ${JSON.stringify(this.labelNames)}`);
    }
    const bounds = this.#bounds;
    const series: HistogramSeries<L> = { labels: { ...labels }, counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 };
    const handle: HistogramChild = {
      observe: (value) => {
        if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        series.counts[i]!++;
        series.sum += value;
        series.count++;
      },
    };
    this.#series.set(key, { series, handle });
    return handle;
  }

  /** Counts `value` in the series of `labels`: for observations too rare to keep a child for. */
  observe(labels: LabelValues<L>, value: number): void {
    this.child(labels).observe(value);
  }

  /**
   * What prom-client's Histogram gives the registry to write: per series, cumulative buckets, then
   * `+Inf`, sum and count, its labels apart from `le` (the registry merges them).
   */
  getForPromString(): MetricObjectWithValues<MetricValueWithName<string>> {
    const values: Array<MetricValueWithName<string>> = [];
    const bucket = `${this.name}_bucket`;
    for (const { series } of this.#series.values()) {
      if (series.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += series.counts[i]!;
        values.push(valuePair({ le: this.#bounds[i]! }, cumulative, bucket, null, series.labels));
      }
      values.push(valuePair({ le: '+Inf' }, series.count, bucket, null, series.labels));
      values.push(valuePair({}, series.sum, `${this.name}_sum`, undefined, series.labels));
      values.push(valuePair({}, series.count, `${this.name}_count`, undefined, series.labels));
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator } as unknown as MetricObjectWithValues<MetricValueWithName<string>>;
  }

  /** The same values, each with all its labels (`registry.getMetricsAsJSON()`), as prom-client's Histogram returns them. */
  get(): MetricObjectWithValues<MetricValueWithName<string>> {
    const data = this.getForPromString();
    return {
      ...data,
      values: data.values.map((value) => {
        const { sharedLabels, labels, ...rest } = value as unknown as { sharedLabels: object; labels: object };
        return { ...rest, labels: { ...labels, ...sharedLabels } } as unknown as MetricValueWithName<string>;
      }),
    };
  }

  reset(): void {
    for (const { series } of this.#series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}

/** One exposed value, in the shape prom-client's own metrics give the registry. */
function valuePair(labels: object, value: number, metricName: string, exemplar: null | undefined, sharedLabels: object): MetricValueWithName<string> {
  return { labels, sharedLabels, value, metricName, exemplar } as unknown as MetricValueWithName<string>;
}
