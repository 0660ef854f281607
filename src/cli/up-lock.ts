import { createHash } from 'node:crypto';
import { link, mkdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { AsyncFnError } from '../errors.js';
import { NATS_CONFIG_FILE } from '../nats/local-server.js';
import { hasProcfs, looksLikeAsyncfnUp, natsServersWithConfig, pidExists, processInfo, type ProcessInfo } from './process-info.js';
import { NATS_DIR, UP_LOCK_FILE } from './up-data-dir.js';

/**
 * One `asyncfn up` per data directory, so that one nats-server at a time uses its JetStream store
 * (two servers on one store can corrupt it).
 *
 * - The lock file `<dataDir>/up.lock` is created exclusively (written aside, then hard-linked into
 *   place: it never exists half-written) and holds the owner's pid and start time, later its
 *   nats-server's pid and URL. A lock whose owner is gone (no such pid, or the pid now names a
 *   process with another start time) is stale: it is cleared, with a warning.
 * - On Linux an abstract unix socket named after the directory is held as well, for the life of
 *   `up`. The kernel releases it when `up` dies however it dies, and binding it is atomic, so two
 *   `up` that find the same stale lock at once cannot both clear it and both go on. Elsewhere the
 *   lock file alone decides (a race of two starts on one stale lock remains possible there).
 * - A nats-server still running on the store without a live owner (killed with its watchdog, or
 *   started by an asyncfn older than this lock) is stopped with SIGTERM (nats-server flushes its
 *   store on it) before a new one starts; one whose parent is a live older `asyncfn up` is refused.
 */

/** What the lock file holds (JSON). */
export interface UpLockRecord {
  /** The pid of the `asyncfn up` holding the lock. */
  readonly pid: number;
  /** Its start time (ticks after boot, /proc), so that a reused pid is not mistaken for it; absent without /proc. */
  readonly startTime?: number;
  /** The pid of its nats-server, once started. */
  readonly natsPid?: number;
  /** The URL of its nats-server, once started. */
  readonly natsUrl?: string;
}

/** Another `asyncfn up` uses this data directory (or a nats-server it cannot stop runs on its store). */
export class UpLockedError extends AsyncFnError<'ASYNCFN_ERR_UP_LOCKED'> {
  constructor(message: string, opts?: ErrorOptions) {
    super('ASYNCFN_ERR_UP_LOCKED', [message], opts);
  }
}

/** A held lock. */
export interface UpLock {
  /** Records the nats-server started under the lock, for the message another `up` prints. */
  recordNats(nats: { pid: number; url: string }): Promise<void>;
  /** Removes the lock file (if still ours) and lets go of the socket. */
  release(): Promise<void>;
}

/** The few log calls the lock makes. */
export interface UpLockLog {
  warn(obj: object, msg: string): void;
}

/** How long a nats-server left on the store gets to exit after SIGTERM, in ms. */
const ORPHAN_STOP_MS = 10_000;
/** How long a refused `up` waits for the running one to record its nats-server (to name it), in ms. */
const HOLDER_WRITE_MS = 5_000;

/** The one-line refusal naming the running `asyncfn up` and its nats-server. */
export function heldMessage(dataDir: string, holder: UpLockRecord | undefined): string {
  const who = holder === undefined ? 'another asyncfn up' : `asyncfn up (pid ${holder.pid})`;
  const nats = holder?.natsPid === undefined ? '' : ` with its nats-server (pid ${holder.natsPid}${holder.natsUrl === undefined ? '' : `, ${holder.natsUrl}`})`;
  return `${who} already runs in ${dataDir}${nats}; stop it first, or run asyncfn up in another directory`;
}

/** Takes the lock of `dataDir` (absolute), and stops a nats-server left on its store; throws UpLockedError if another `up` has it. */
export async function acquireUpLock(dataDir: string, log: UpLockLog): Promise<UpLock> {
  await mkdir(dataDir, { recursive: true });
  const lockPath = join(dataDir, UP_LOCK_FILE);
  const procfs = await hasProcfs();
  const guard = process.platform === 'linux' ? await holdSocket(dataDir) : undefined;
  if (guard === 'held') throw new UpLockedError(heldMessage(dataDir, await waitForHolder(lockPath, procfs)));
  const me: UpLockRecord = { pid: process.pid, startTime: (await processInfo(process.pid))?.startTime };
  let stale: UpLockRecord | undefined;
  try {
    for (let attempt = 0; !(await createExclusive(lockPath, me)); attempt++) {
      const held = await readRecord(lockPath);
      if (held !== undefined && (await isAlive(held, procfs))) throw new UpLockedError(heldMessage(dataDir, held));
      if (attempt >= 2) throw new UpLockedError(`could not take the lock ${lockPath}: it keeps coming back; another asyncfn up may be starting in ${dataDir}`);
      stale = held;
      log.warn({ lock: lockPath, ownerPid: held?.pid, natsPid: held?.natsPid }, 'cleared the lock of an asyncfn up that is gone');
      await rm(lockPath, { force: true });
    }
    await stopLeftovers(dataDir, stale, procfs, log);
  } catch (err) {
    if (guard !== undefined) guard.close();
    if ((await readRecord(lockPath))?.pid === process.pid) await rm(lockPath, { force: true });
    throw err;
  }
  let record = me;
  return {
    recordNats: async (nats) => {
      record = { ...record, natsPid: nats.pid, natsUrl: nats.url };
      const aside = `${lockPath}.${process.pid}.tmp`;
      await writeFile(aside, JSON.stringify(record));
      await rename(aside, lockPath);
    },
    release: async () => {
      if ((await readRecord(lockPath))?.pid === process.pid) await rm(lockPath, { force: true });
      guard?.close();
    },
  };
}

/**
 * Binds the abstract unix socket of `dataDir` (Linux): the Server while held, 'held' if another
 * process has it, undefined if abstract sockets are unavailable (then the lock file alone decides).
 */
async function holdSocket(dataDir: string): Promise<Server | 'held' | undefined> {
  const name = `\0asyncfn-up:${createHash('sha256')
    .update(await realpath(dataDir))
    .digest('hex')
    .slice(0, 40)}`;
  const server = createServer((socket) => socket.destroy());
  return new Promise((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? 'held' : undefined));
    server.listen(name, () => {
      server.unref();
      resolve(server);
    });
  });
}

/** The record of the `up` holding the socket, once it names its nats-server (bounded wait: it may be starting). */
async function waitForHolder(lockPath: string, procfs: boolean): Promise<UpLockRecord | undefined> {
  const deadline = Date.now() + HOLDER_WRITE_MS;
  let held = await readRecord(lockPath);
  while ((held?.natsPid === undefined || !(await isAlive(held, procfs))) && Date.now() < deadline) {
    await delay(50);
    held = await readRecord(lockPath);
  }
  return held !== undefined && (await isAlive(held, procfs)) ? held : undefined;
}

/** Creates the lock file with `record` unless it exists: written aside, then linked (link fails on an existing name). */
async function createExclusive(lockPath: string, record: UpLockRecord): Promise<boolean> {
  const aside = `${lockPath}.${process.pid}.tmp`;
  await writeFile(aside, JSON.stringify(record));
  try {
    await link(aside, lockPath);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await rm(aside, { force: true });
  }
}

async function readRecord(lockPath: string): Promise<UpLockRecord | undefined> {
  const text = await readFile(lockPath, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as UpLockRecord;
    return Number.isInteger(parsed.pid) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The lock's owner still runs: the same pid and, with /proc, the same start time. */
async function isAlive(record: UpLockRecord, procfs: boolean): Promise<boolean> {
  if (!procfs) return pidExists(record.pid);
  const info = await processInfo(record.pid);
  return info !== undefined && (record.startTime === undefined || info.startTime === record.startTime);
}

/** Stops the nats-servers still running on the store without a live owner; refuses one whose owner runs. */
async function stopLeftovers(dataDir: string, stale: UpLockRecord | undefined, procfs: boolean, log: UpLockLog): Promise<void> {
  const store = join(dataDir, NATS_DIR);
  if (!procfs) {
    // Without /proc a pid cannot be told from a reused one: name it rather than signal a stranger.
    if (stale?.natsPid !== undefined && pidExists(stale.natsPid)) {
      throw new UpLockedError(
        `a process with the pid of the nats-server (pid ${stale.natsPid}) of an asyncfn up that is gone still runs; if it is that nats-server on ${store}, stop it, then start again`,
      );
    }
    return;
  }
  for (const server of await natsServersWithConfig(join(store, NATS_CONFIG_FILE))) {
    const parent = await processInfo(server.ppid);
    if (parent !== undefined && looksLikeAsyncfnUp(parent.argv)) {
      throw new UpLockedError(
        `an older asyncfn up (pid ${parent.pid}) runs its nats-server (pid ${server.pid}) on ${store}; stop it first, or run asyncfn up in another directory`,
      );
    }
    log.warn({ natsPid: server.pid, store }, 'stopping a nats-server left running on this store by an asyncfn up that is gone');
    if (!(await stopAndWait(server))) {
      throw new UpLockedError(
        `a nats-server (pid ${server.pid}) left by an asyncfn up that is gone still runs on ${store} ${ORPHAN_STOP_MS / 1000} s after SIGTERM; stop it (kill -9 ${server.pid}) and start again`,
      );
    }
  }
}

/** SIGTERM, then waits (bounded) until that very process is gone. */
async function stopAndWait(server: ProcessInfo): Promise<boolean> {
  const same = async (): Promise<boolean> => {
    const now = await processInfo(server.pid);
    // A zombie has exited; only its parent's wait is missing.
    return now !== undefined && now.state !== 'Z' && now.startTime === server.startTime;
  };
  try {
    process.kill(server.pid, 'SIGTERM');
  } catch {
    return !(await same());
  }
  const deadline = Date.now() + ORPHAN_STOP_MS;
  while (Date.now() < deadline) {
    if (!(await same())) return true;
    await delay(50);
  }
  return !(await same());
}
