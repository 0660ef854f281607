import { pino, type Logger } from 'pino';
import type { LogConfig } from '../config/index.js';

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

/** JSON lines by default; `log_format=console` for a readable terminal (pino-pretty). */
export function createLogger(config: Pick<LogConfig, 'level' | 'format'>, name = 'asyncfn'): Logger {
  const options = { name, level: config.level, redact: { paths: REDACT, censor: '[redacted]' } };
  if (config.format === 'console') {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } });
  }
  return pino(options);
}
