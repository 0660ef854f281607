import { parseDurationMs } from '../config/duration.js';

/**
 * Durations for the sample functions: parsed like every asyncfn duration ("2s", "500ms",
 * "1m30s", or bare seconds), formatted the way Go prints short durations.
 */

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Largest duration the samples accept: one hour, enough to demo a long job without leaking timers. */
export const MAX_SAMPLE_DURATION_MS = UNIT_MS.h;

/** Formats milliseconds the way Go prints short durations, without zero parts: 2s, 500ms, 1m30s, 1.5s, 1h. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / UNIT_MS.h);
  const m = Math.floor((ms % UNIT_MS.h) / UNIT_MS.m);
  const s = (ms % UNIT_MS.m) / 1000;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

/** Reads a duration parameter: a one-line problem for the 400 response, or the value in ms. */
export function durationParam(field: string, raw: string): { ok: true; ms: number } | { ok: false; problem: string } {
  const parsed = parseDurationMs(raw.trim());
  if (parsed === undefined) {
    return { ok: false, problem: `invalid ${field} "${raw}": expected e.g. 2s, 500ms, 1m or a number of seconds` };
  }
  const ms = Math.round(parsed);
  if (ms > MAX_SAMPLE_DURATION_MS) return { ok: false, problem: `${field} "${raw}" exceeds the maximum of 1h` };
  return { ok: true, ms };
}
