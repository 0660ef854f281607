/** Small statistics for the bench: percentiles over recorded samples and rates over time spans. */

/** The p-th percentile (0–100) of `samples` by nearest rank; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** The median of `samples` (the lower of the middle two for an even count); NaN when there are none. */
export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** Events per second for `count` events over `elapsedMs`; NaN for an empty span. */
export function perSecond(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (count * 1000) / elapsedMs : Number.NaN;
}

/** Wall clock in milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export const MIB = 1024 * 1024;
