/**
 * Remembers what `derive` gave for each key it was asked about, for up to `max` keys (and only the
 * keys `keep` accepts); past that it derives each time. For what a hot path works out again and
 * again from the same few inputs, once per message or per request: a header name's lower-case key,
 * whether a name or a callback URL is valid (BENCHMARKS.md, "Header names kept").
 *
 * It fills and never evicts: `derive` must be a pure function of its key, so what it holds stays
 * right, and the bound keeps inputs that are ever new from growing it. `null` is a value like any
 * other ("not one"); `derive` never returns undefined. When `derive` throws, nothing is kept and
 * the key is derived (and throws) again next time.
 */
export class BoundedMemo<K, V extends NonNullable<unknown> | null> {
  readonly #values = new Map<K, V>();
  readonly #derive: (key: K) => V;
  readonly #max: number;
  readonly #keep: ((key: K) => boolean) | undefined;

  constructor(derive: (key: K) => V, opts: { readonly max: number; readonly keep?: (key: K) => boolean }) {
    this.#derive = derive;
    this.#max = opts.max;
    this.#keep = opts.keep;
  }

  get(key: K): V {
    let value = this.#values.get(key);
    if (value === undefined) {
      value = this.#derive(key);
      if (this.#values.size < this.#max && (this.#keep === undefined || this.#keep(key))) this.#values.set(key, value);
    }
    return value;
  }

  /** How many keys it holds. */
  get size(): number {
    return this.#values.size;
  }
}

/** Keeps string keys up to this length: a longer one is derived each time (a bound on the memory kept). */
export const shortKey =
  (max: number) =>
  (key: string): boolean =>
    key.length <= max;
