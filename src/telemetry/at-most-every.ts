/**
 * A call made at most once per `intervalMs`: for warnings a request can trigger, so that a burst
 * logs one line, not one per request. The calls skipped meanwhile are counted into the next one.
 */
export function atMostEvery<A extends unknown[]>(intervalMs: number, call: (skipped: number, ...args: A) => void, now: () => number = Date.now): (...args: A) => void {
  let last = -Infinity;
  let skipped = 0;
  return (...args) => {
    const at = now();
    if (at - last < intervalMs) {
      skipped++;
      return;
    }
    last = at;
    const before = skipped;
    skipped = 0;
    call(before, ...args);
  };
}
