import { createRequire } from 'node:module';
import { pino, type DestinationStream } from 'pino';
import type PinoPretty from 'pino-pretty';

/**
 * Console log lines (`log_format=console`), for people at a terminal:
 *
 *   [14:03:07.412] INFO: worker 9b1d0c7e-5a3b-4c45-a9a0-7f2b2d7c1e11 invocation acked {"function":"work","attempt":1,…}
 *
 * time (local), level, component, call id, message, then the remaining fields as compact JSON;
 * an `err` is printed below its line with its stack. pino-pretty formats each line in this
 * process, synchronously (no worker thread, nothing lost when the process exits right after a
 * line), and is loaded only when console lines are asked for: a JSON logger never loads it.
 */

/** Shown in front of the message, so left out of the fields after it. */
const IN_FRONT = ['component', 'callId'];
/** The same on every line of one process: noise in a terminal (JSON lines keep them). */
const CONSTANT = ['pid', 'hostname', 'name'];

// The control characters a terminal would obey (escape sequences, carriage return, bell…), as
// pino-pretty strips them from messages it formats itself: a function name or a NATS error text
// must not be able to move the cursor or recolour the terminal. Tab and newline are harmless.
const UNSAFE_CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;

export interface ConsoleLogOptions {
  /** ANSI colours (LogConfig.colour: only when stdout is a terminal). */
  readonly colour: boolean;
}

/** Turns one pino JSON line into a console line (ending with a newline). Not JSON: passed through. */
export function consoleFormatter(opts: ConsoleLogOptions): (jsonLine: string) => string {
  // CommonJS, loaded here rather than imported so that only a console logger pays for it.
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return prettyFactory({
    colorize: opts.colour,
    translateTime: 'SYS:HH:MM:ss.l',
    singleLine: true,
    // pino-pretty computes the message before it drops these keys, so messageFormat still sees them.
    ignore: [...CONSTANT, ...IN_FRONT].join(','),
    messageFormat: (log, messageKey, _levelLabel, { colors }) => {
      const parts: string[] = [];
      if (typeof log.component === 'string') parts.push(colors.magenta(safe(log.component)));
      if (typeof log.callId === 'string') parts.push(colors.gray(safe(log.callId)));
      const message = log[messageKey];
      // pino's message is a string; anything else prints as String() gives it, as pino-pretty's default does.
      // eslint-disable-next-line @typescript-eslint/no-base-to-string
      if (message !== undefined) parts.push(safe(String(message)));
      return parts.join(' ');
    },
  });
}

/**
 * A pino destination writing console lines to `out` (default: stdout, synchronously, like pino's
 * own default destination).
 */
export function consoleDestination(opts: ConsoleLogOptions, out: { write(text: string): unknown } = pino.destination({ fd: 1, sync: true })): DestinationStream {
  const format = consoleFormatter(opts);
  return { write: (line: string) => void out.write(format(line)) };
}

function safe(text: string): string {
  return text.replace(UNSAFE_CONTROL, '');
}
