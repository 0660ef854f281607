/**
 * OpenTelemetry's own warnings and errors (its `diag` channel: a span export refused, a collector
 * unreachable, a bad header) as the process's log lines. Without a diag logger the SDK drops them,
 * and a wrong endpoint leaves an empty Jaeger and no hint. A collector that is down fails every
 * export: one line per interval at most, with how many were skipped since the last.
 */
import type { DiagLogger } from '@opentelemetry/api';
import type { Logger } from './logger.js';
import { atMostEvery } from './at-most-every.js';

/** One line a minute at most: an export fails every OTEL_BSP_SCHEDULE_DELAY (5 s) while the collector is down. */
export const DIAG_LOG_INTERVAL_MS = 60_000;

/** Longest detail kept from a diag message's extra arguments. */
const MAX_DETAIL_CHARS = 500;

/** A diag logger writing warnings and errors to `logger` (info and below are dropped), rate-limited. */
export function diagLogger(logger: Logger, intervalMs = DIAG_LOG_INTERVAL_MS, now: () => number = Date.now): DiagLogger {
  const write = atMostEvery(
    intervalMs,
    (skipped: number, level: 'warn' | 'error', message: string, args: unknown[]) => {
      const details = args.map(detailOf);
      const { text, code } = readable(message);
      const fields = { ...(code !== undefined ? { code } : {}), ...(details.length > 0 ? { details } : {}), ...(skipped > 0 ? { otelMessagesSkipped: skipped } : {}) };
      logger[level](fields, `OpenTelemetry: ${text}`);
    },
    now,
  );
  const ignore = (): void => undefined;
  return {
    error: (message, ...args) => write('error', message, args),
    warn: (message, ...args) => write('warn', message, args),
    info: ignore,
    debug: ignore,
    verbose: ignore,
  };
}

/**
 * The SDK's error handler logs an exception as its JSON (stack, message, code: a failed export);
 * the line keeps its message and code, not the SDK's stack.
 */
function readable(message: string): { text: string; code?: string } {
  if (!message.startsWith('{')) return { text: message };
  try {
    const parsed = JSON.parse(message) as { message?: unknown; code?: unknown };
    if (typeof parsed.message !== 'string') return { text: message };
    return { text: parsed.message, ...(typeof parsed.code === 'string' || typeof parsed.code === 'number' ? { code: String(parsed.code) } : {}) };
  } catch {
    return { text: message };
  }
}

function detailOf(arg: unknown): string {
  let text: string;
  if (arg instanceof Error) text = arg.message;
  else if (typeof arg === 'string') text = arg;
  else {
    try {
      text = JSON.stringify(arg) ?? String(arg);
    } catch {
      text = String(arg);
    }
  }
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text;
}

/** The export URL as logged: without the credentials a URL may carry. */
export function loggableUrl(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  if (parsed.username === '' && parsed.password === '') return url;
  parsed.username = '';
  parsed.password = '';
  return parsed.href;
}
