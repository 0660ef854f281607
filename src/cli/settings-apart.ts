/**
 * Reads a command's settings in a short-lived child process (settings-child.ts), so the validators
 * never load into the long-running gateway or worker (settings.ts says why). The child is given
 * the environment to read; its answer comes back V8-serialized on its stdout, and its stderr is this
 * process's. The config is frozen again here, as loadConfig froze it there.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deserialize } from 'node:v8';
import { deepFreeze } from '../config/deep-freeze.js';
import { ConfigError } from '../errors.js';
import type { Settings, SettingsFailure, SettingsMessage, SettingsRequest } from './settings.js';

/** The child's script, beside this one: `.js` when compiled, `.ts` when run from the sources. */
const CHILD = fileURLToPath(new URL(`./settings-child${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/** Node options that load code (tsx from the sources, a test's hook), which the child needs too; not the rest (--inspect, --cpu-prof). */
const LOADER_FLAGS = ['--import', '--require', '-r', '--loader', '--experimental-loader'];

/** The entries of `execArgv` that load code, with their values. */
export function loaderArgs(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    if (LOADER_FLAGS.includes(arg) && i + 1 < execArgv.length) kept.push(arg, execArgv[++i]!);
    else if (LOADER_FLAGS.some((flag) => arg.startsWith(`${flag}=`))) kept.push(arg);
  }
  return kept;
}

/** The error the child reported, as this process throws it (the CLI prints it as it would have there). */
export function errorOf(failure: SettingsFailure): Error {
  if ('problems' in failure) return new ConfigError(failure.problems);
  const err = new Error(failure.printed.split('\n')[0]);
  err.stack = failure.printed;
  return err;
}

/** Reads the settings from `env` in a child process. Throws ConfigError listing every problem, as readSettings does. */
export async function readSettingsApart(request: SettingsRequest, env: NodeJS.ProcessEnv): Promise<Settings> {
  const child = spawn(process.execPath, [...loaderArgs(process.execArgv), CHILD, JSON.stringify(request)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  if (code !== 0 || chunks.length === 0) {
    throw new Error(`could not read the settings: their child process (${CHILD}) exited with ${signal ?? `code ${String(code)}`} and no answer`);
  }
  let message: SettingsMessage;
  try {
    message = deserialize(Buffer.concat(chunks)) as SettingsMessage;
  } catch (err) {
    // Something else wrote to the child's stdout (a preloaded module, a NODE_OPTIONS hook).
    throw new Error(`could not read the settings: the answer of their child process (${CHILD}) is not one message`, { cause: err });
  }
  if ('failure' in message) throw errorOf(message.failure);
  return { ...message.settings, config: deepFreeze(message.settings.config) };
}
