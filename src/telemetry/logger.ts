import { pino, type Logger } from 'pino';
import type { LogConfig } from '../config/index.js';
import { consoleDestination } from './console-logs.js';

export type { Logger };

/** Header and field paths never written to logs. */
const REDACT = [
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["proxy-authorization"]',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
];

/**
 * A pino logger writing to stdout: JSON lines (`log_format=json`), or console lines for people
 * (`log_format=console`, see console-logs.ts), coloured if `colour` (default false). JSON lines
 * go straight to pino's own destination: the console formatter is not in their path.
 */
export function createLogger(config: Pick<LogConfig, 'level' | 'format'> & Partial<Pick<LogConfig, 'colour'>>, name = 'asyncfn'): Logger {
  const options = { name, level: config.level, redact: { paths: REDACT, censor: '[redacted]' } };
  if (config.format === 'console') return pino(options, consoleDestination({ colour: config.colour ?? false }));
  return pino(options);
}
