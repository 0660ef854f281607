/** Slots a ring grows to at most (2^24): `&` reads tokens as 32-bit integers. */
const MAX_CAPACITY = 1 << 24;

/**
 * Entries keyed by tokens handed out in order (0, 1, 2, …), such as the confirmer's writes waiting
 * for their answers: a ring indexed by the token's low bits, no hash table. A `Map` keyed by the
 * tokens' strings rehashed its table with every burst of writes (it grows as a turn's writes are
 * sent and shrinks as their answers come). Once the map is in the old generation V8 allocates each
 * new table there, and every table replaced stays there, dead, until the next full collection:
 * meanwhile the young generation's collections keep alive what it pointed to, so a busy gateway
 * promoted ~420 B per `202` out of it (BENCHMARKS.md, "The confirmer's writes in a ring").
 *
 * The ring doubles when a new token's slot is still held (an older entry still waiting, a whole
 * ring of tokens ago); it goes back to its first size once it is empty.
 */
export class TokenRing<T extends { readonly token: number }> {
  readonly #initial: number;
  #slots: Array<T | undefined>;
  #mask: number;
  #size = 0;

  /** `capacity`: the first size, a power of two. */
  constructor(capacity = 64) {
    if (!Number.isInteger(Math.log2(capacity))) throw new RangeError(`a ring's capacity is a power of two, not ${capacity}`);
    this.#initial = capacity;
    this.#slots = new Array<T | undefined>(capacity).fill(undefined);
    this.#mask = capacity - 1;
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** Slots the ring has now (for tests). */
  get capacity(): number {
    return this.#slots.length;
  }

  /** Holds `entry`; its token must not be held already. */
  add(entry: T): void {
    // `&` reads the token modulo 2^32: its low bits, for any integer a number holds exactly.
    while (this.#slots[entry.token & this.#mask] !== undefined) this.#grow();
    this.#slots[entry.token & this.#mask] = entry;
    this.#size += 1;
  }

  /** The entry of `token`, if held (NaN and tokens never handed out are held by none). */
  get(token: number): T | undefined {
    const entry = this.#slots[token & this.#mask];
    return entry !== undefined && entry.token === token ? entry : undefined;
  }

  /** Removes the entry of `token` and returns it, if held. */
  take(token: number): T | undefined {
    const entry = this.get(token);
    if (entry === undefined) return undefined;
    this.#slots[token & this.#mask] = undefined;
    this.#size -= 1;
    if (this.#size === 0 && this.#slots.length > this.#initial) this.#reset();
    return entry;
  }

  /** Calls `visit` with every entry held, in slot order; `visit` may take the entry it is given. */
  forEach(visit: (entry: T) => void): void {
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i++) {
      const entry = slots[i];
      if (entry !== undefined) visit(entry);
    }
  }

  /** Removes every entry. */
  clear(): void {
    this.#reset();
    this.#size = 0;
  }

  #reset(): void {
    this.#slots = new Array<T | undefined>(this.#initial).fill(undefined);
    this.#mask = this.#initial - 1;
  }

  /** Doubles the ring until every entry has a slot of its own. */
  #grow(): void {
    let capacity = this.#slots.length * 2;
    for (;;) {
      // Tokens a whole 2^24 apart both still held: a writer that never lets its entries go.
      if (capacity > MAX_CAPACITY) throw new RangeError(`a token ring holds at most ${MAX_CAPACITY} entries`);
      const slots = new Array<T | undefined>(capacity).fill(undefined);
      const mask = capacity - 1;
      let placed = true;
      for (const entry of this.#slots) {
        if (entry === undefined) continue;
        if (slots[entry.token & mask] !== undefined) {
          placed = false;
          break;
        }
        slots[entry.token & mask] = entry;
      }
      if (placed) {
        this.#slots = slots;
        this.#mask = mask;
        return;
      }
      capacity *= 2;
    }
  }
}
