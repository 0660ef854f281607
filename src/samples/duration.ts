/**
 * Go-style durations for the sample functions ("2s", "500ms", "1m30s", or a bare number of
 * seconds), kept here so the samples depend on nothing else in asyncfn.
 */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const SECONDS = /^\d+(?:\.\d+)?$/;
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
// 'ms' comes before 'm' and 's' so "500ms" is not read as 500 minutes followed by junk.
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** Largest duration the samples accept: one hour, enough to demo a long job without leaking timers. */
export const MAX_SAMPLE_DURATION_MS = UNIT_MS.h;

/**
 * Parses "2s", "500ms", "1m", "1h", "1m30s", "1.5s" or a bare number of seconds ("2", "0.5") into
 * milliseconds (rounded). Returns undefined for anything else, including negative values.
 */
export function parseDurationMs(raw: string): number | undefined {
  const s = raw.trim();
  if (SECONDS.test(s)) return Math.round(Number(s) * 1000);
  if (!GO_DURATION.test(s)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of s.matchAll(PART)) ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return Math.round(ms);
}

/** Formats milliseconds the way Go prints short durations, without zero parts: 2s, 500ms, 1m30s, 1.5s, 1h. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / UNIT_MS.h);
  const m = Math.floor((ms % UNIT_MS.h) / UNIT_MS.m);
  const s = (ms % UNIT_MS.m) / 1000;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

/** Reads a duration parameter: a one-line problem for the 400 response, or the value in ms. */
export function durationParam(
  field: string,
  raw: string,
): { ok: true; ms: number } | { ok: false; problem: string } {
  const ms = parseDurationMs(raw);
  if (ms === undefined) {
    return { ok: false, problem: `invalid ${field} "${raw}": expected e.g. 2s, 500ms, 1m or a number of seconds` };
  }
  if (ms > MAX_SAMPLE_DURATION_MS) return { ok: false, problem: `${field} "${raw}" exceeds the maximum of 1h` };
  return { ok: true, ms };
}
