/**
 * At most one write per key every `minIntervalMs`, the latest value winning: the cheap rate limit
 * of progress reports (one per call id per gateway process). A value submitted while its key's
 * write is in flight, or within `minIntervalMs` after that write started, waits and replaces any
 * other waiting value; when the interval is over, the latest one is written, and every request
 * that waited resolves with that write's result. So a function reporting in a tight loop costs
 * ten KV writes a second, and its last report is never dropped: the final "100 %" lands.
 *
 * State lives only for keys written within the last interval (a Map entry and one timer each);
 * nothing stays behind for a call id that stopped reporting.
 */
export interface Coalescer<V, R> {
  submit(key: string, value: V): Promise<R>;
  /** Keys with a write in flight or in their interval (for tests). */
  readonly active: number;
}

interface Waiter<R> {
  readonly resolve: (result: R) => void;
  readonly reject: (err: unknown) => void;
}

interface Slot<V, R> {
  next: { readonly value: V } | undefined;
  waiters: Waiter<R>[];
}

/** `write` performs one write; `minIntervalMs` ≥ 0; `now` is a monotonic clock in ms. */
export function coalescer<V, R>(write: (key: string, value: V) => Promise<R>, minIntervalMs: number, now: () => number = () => performance.now()): Coalescer<V, R> {
  const slots = new Map<string, Slot<V, R>>();

  const drain = async (key: string, slot: Slot<V, R>): Promise<void> => {
    try {
      while (slot.next !== undefined) {
        const { value } = slot.next;
        const waiters = slot.waiters;
        slot.next = undefined;
        slot.waiters = [];
        const startedAt = now();
        try {
          const result = await write(key, value);
          for (const w of waiters) w.resolve(result);
        } catch (err) {
          for (const w of waiters) w.reject(err);
        }
        const holdMs = minIntervalMs - (now() - startedAt);
        // Not unref'd: a request may be waiting on it.
        if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));
      }
    } finally {
      slots.delete(key);
    }
  };

  return {
    submit(key, value) {
      return new Promise<R>((resolve, reject) => {
        const existing = slots.get(key);
        if (existing) {
          existing.next = { value };
          existing.waiters.push({ resolve, reject });
          return;
        }
        const slot: Slot<V, R> = { next: { value }, waiters: [{ resolve, reject }] };
        slots.set(key, slot);
        void drain(key, slot);
      });
    },
    get active() {
      return slots.size;
    },
  };
}
