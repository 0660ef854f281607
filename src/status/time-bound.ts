import { parseDurationMs } from '../config/duration.js';

/** RFC 3339 date-time with a mandatory offset ("2024-05-01T12:00:00Z", "…T12:00:00.5+02:00"). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/**
 * A point in time: a duration meaning "that long ago" (`1h`, `30m`, `1h30m`, Go syntax) or an
 * RFC 3339 date-time. Returns Unix ms, or undefined when the text is neither. Shared by the
 * dead-letter filters (`asyncfn dlq --since`) and the invocation filters (`asyncfn cancel --since`).
 */
export function parseTimeBound(text: string, nowMs: number): number | undefined {
  const trimmed = text.trim();
  if (RFC3339.test(trimmed)) {
    const ms = Date.parse(trimmed.replace(' ', 'T').toUpperCase());
    return Number.isNaN(ms) ? undefined : ms;
  }
  const agoMs = parseDurationMs(trimmed);
  return agoMs === undefined ? undefined : nowMs - agoMs;
}

/** The words of a refused time bound, for `option` ("--since", "since"). */
export function badTimeBound(option: string, text: string): string {
  return `${option} "${text}" is neither a duration (30m, 1h, 1h30m) nor an RFC 3339 time (2024-05-01T12:00:00Z)`;
}
