import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/**
 * What `asyncfn up` needs to know about other processes to guard its data directory, read from
 * /proc (Linux). Where there is no /proc, `processInfo` answers undefined and callers fall back
 * to `process.kill(pid, 0)`.
 */

/** One process as /proc shows it. */
export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  /** State letter (field 3): R, S, D, Z (zombie: exited, not yet reaped by its parent), … */
  readonly state: string;
  /**
   * Start time in clock ticks after boot (field 22 of /proc/<pid>/stat). With the pid, it names
   * one process for the life of the machine: a pid reused by another process has another start time.
   */
  readonly startTime: number;
  /** The command line, one argument per element. */
  readonly argv: readonly string[];
}

/** The process `pid`, or undefined if it does not exist (or /proc cannot be read). */
export async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const [stat, cmdline] = await Promise.all([
    readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined),
    readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined),
  ]);
  if (stat === undefined || cmdline === undefined) return undefined;
  return parseProcess(pid, stat, cmdline);
}

/** Parses /proc/<pid>/stat and /proc/<pid>/cmdline; undefined if stat is malformed. */
export function parseProcess(pid: number, stat: string, cmdline: string): ProcessInfo | undefined {
  // The command name (field 2) is in parentheses and may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  const ppid = Number(fields[1]);
  const startTime = Number(fields[19]);
  if (!Number.isInteger(ppid) || !Number.isInteger(startTime)) return undefined;
  const argv = cmdline.split('\0');
  if (argv.at(-1) === '') argv.pop();
  return { pid, ppid, state: fields[0] ?? '', startTime, argv };
}

/** Whether /proc describes processes here. */
export async function hasProcfs(): Promise<boolean> {
  return (await processInfo(process.pid)) !== undefined;
}

/** Whether a process `pid` exists, by signal 0 (EPERM: it exists, owned by someone else). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every nats-server process whose command line names `configPath` (`nats-server -c <configPath>`). */
export async function natsServersWithConfig(configPath: string): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  const entries = await readdir('/proc').catch(() => [] as string[]);
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const info = await processInfo(Number(entry));
    if (info && isNatsServerWith(info.argv, configPath)) found.push(info);
  }
  return found;
}

/** `argv` runs nats-server with the config file `configPath`. */
export function isNatsServerWith(argv: readonly string[], configPath: string): boolean {
  return argv.length > 0 && basename(argv[0]!) === 'nats-server' && argv.includes(configPath);
}

/**
 * `argv` looks like `asyncfn up`, however it was started: `node dist/src/cli/main.js up`,
 * `node --import tsx src/cli/main.ts up`, or the installed `asyncfn up` (node, then the bin's path).
 */
export function looksLikeAsyncfnUp(argv: readonly string[]): boolean {
  return argv.includes('up') && argv.some((arg) => /(^|\/)(asyncfn|main\.[cm]?[jt]s)$/.test(arg));
}
