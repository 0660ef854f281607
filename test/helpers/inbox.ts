/**
 * Items (events, calls, requests) in arrival order; `next()` waits for the next one. The timer
 * only bounds a wait that would otherwise hang the file until tap's timeout, so a missing event
 * fails with its name instead.
 */
export class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiters: Array<(item: T) => void> = [];

  /** @param what names the awaited item in the timeout error ("a pull request"). */
  constructor(readonly what: string) {}

  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  /** The next item; rejects after `timeoutMs` (default 2000 ms) if none arrives. */
  next(timeoutMs = 2000): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift() as T);
    return new Promise<T>((resolve, reject) => {
      const waiter = (item: T): void => {
        clearTimeout(timer);
        resolve(item);
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for ${this.what}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Items that arrived and were not taken by `next()`. */
  get backlog(): number {
    return this.#items.length;
  }
}

/**
 * Lets every queued microtask run (the supervisors debounce pull demand on the asap scheduler).
 * Used only to show that something did NOT happen; it waits for no timer.
 */
export const settleMicrotasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
