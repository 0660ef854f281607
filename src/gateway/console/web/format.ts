/*
 * Pure formatting and arithmetic for the console's pages (no DOM, no imports: unit-tested by tap
 * in test/unit/gateway/console-format.test.ts).
 */

/** A count, or "–" where the API says null (does not apply, or could not be told). */
export function formatCount(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : String(n);
}

/** A duration for people: `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const v = Math.max(0, ms);
  if (v < 1_000) return `${Math.round(v)}ms`;
  if (v < 60_000) return `${(Math.floor(v / 100) / 10).toFixed(1)}s`;
  const pad = (n: number): string => String(n).padStart(2, '0');
  const s = Math.floor(v / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h${pad(Math.floor((s % 3_600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3_600))}h`;
}

/** A Unix-ms time as `2026-12-04 13:24:52.123Z` (UTC: every worker's clock and the gateway's agree on it). */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return new Date(ms).toISOString().replace('T', ' ');
}

/** A byte count: `512 B`, `4.0 KiB`, `1.5 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** One reading of a counter that only grows (a queue's `delivered`), at `atMs` (Unix ms). */
export interface CounterSample {
  readonly atMs: number;
  readonly value: number;
}

/** Samples a sparkline keeps per queue: at a 2 s poll, two minutes. */
export const SPARKLINE_SAMPLES = 60;

/** `samples` with `next` appended, the oldest dropped past `max`; a counter that went back (a consumer re-created) restarts the series. */
export function appendSample(samples: readonly CounterSample[], next: CounterSample, max = SPARKLINE_SAMPLES): CounterSample[] {
  const last = samples[samples.length - 1];
  if (last && (next.value < last.value || next.atMs <= last.atMs)) return next.atMs <= last.atMs ? [...samples] : [next];
  return [...samples, next].slice(-max);
}

/** Per-second rates between successive samples (one fewer than the samples). */
export function ratesOf(samples: readonly CounterSample[]): number[] {
  const rates: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    rates.push(((b.value - a.value) * 1_000) / (b.atMs - a.atMs));
  }
  return rates;
}

/**
 * The `points` of an SVG polyline drawing `values` in a `width`×`height` box: left to right, the
 * largest at the top (0 at the bottom; all zero is a flat line at the bottom). Empty for no values.
 */
export function sparklinePoints(values: readonly number[], width: number, height: number): string {
  if (values.length === 0) return '';
  const max = Math.max(...values, 0);
  // One value is a level line across the box (a polyline of one point draws nothing).
  const drawn = values.length === 1 ? [values[0]!, values[0]!] : values;
  const step = width / (drawn.length - 1);
  const y = (v: number): number => (max === 0 ? height : height - (Math.max(0, v) / max) * height);
  const round = (n: number): number => Math.round(n * 10) / 10;
  return drawn.map((v, i) => `${round(i * step)},${round(y(v))}`).join(' ');
}

/** A trace link from `console_trace_url` for one call id; undefined when no template is configured. */
export function traceUrlOf(template: string, callId: string): string | undefined {
  return template === '' ? undefined : template.replaceAll('{call_id}', encodeURIComponent(callId));
}

/** One step of an invocation's timeline. */
export interface TimelineStep {
  readonly label: string;
  readonly atMs: number;
}

/** The times an invocation record holds, in order: enqueued, due (delayed), started, finished. */
export function timelineOf(record: {
  readonly state: string;
  readonly enqueuedAtMs: number;
  readonly notBeforeMs?: number | undefined;
  readonly startedAtMs?: number | undefined;
  readonly finishedAtMs?: number | undefined;
  readonly attempts: number;
}): TimelineStep[] {
  const steps: TimelineStep[] = [{ label: 'enqueued', atMs: record.enqueuedAtMs }];
  if (record.notBeforeMs !== undefined) steps.push({ label: 'due (delayed)', atMs: record.notBeforeMs });
  if (record.startedAtMs !== undefined) steps.push({ label: record.attempts > 1 ? `attempt ${record.attempts} started` : 'started', atMs: record.startedAtMs });
  if (record.finishedAtMs !== undefined) steps.push({ label: record.state, atMs: record.finishedAtMs });
  return steps;
}

/** Splits `items` into chunks of at most `size` (the replay of a filtered set, a chunk per request). */
export function chunksOf<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}
