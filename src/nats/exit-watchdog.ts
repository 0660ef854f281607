import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';

/**
 * Makes a child process die with this process, however this process dies (SIGKILL included).
 *
 * Why a watchdog: the local nats-server has its own process group (Ctrl-C must reach asyncfn
 * only, so that the worker drains while NATS is still up; see local-server.ts), so a kill of
 * asyncfn's group does not reach it, and Linux's PR_SET_PDEATHSIG is out of reach from Node
 * without native code. The watchdog is a `sh` whose stdin is a pipe from this process: the kernel
 * closes that pipe when this process dies, whatever killed it, so `read` sees EOF and the
 * watchdog sends the child SIGTERM (nats-server then flushes its store and exits). The watchdog
 * has a process group of its own too, so the kill of asyncfn's group does not take it.
 *
 * A pid is reused only once its process is reaped; this process reaps the child itself, and
 * disarms the watchdog in the same callback ('exit'), so the watchdog never signals a stranger.
 */
export interface ExitWatchdog {
  /** The watchdog's pid (a `sh`), undefined if it could not be spawned. */
  readonly pid: number | undefined;
  /** Stops the watchdog without touching the watched process. Idempotent. */
  disarm(): void;
}

// $1 is the pid to stop. `read` returns at EOF: no one ever writes to the pipe.
const SCRIPT = 'read _; kill -TERM "$1" 2>/dev/null';

/** Starts a watchdog that sends SIGTERM to `pid` when this process exits or dies. */
export function watchExit(pid: number): ExitWatchdog {
  const watchdog = spawn('sh', ['-c', SCRIPT, 'asyncfn-exit-watchdog', String(pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  // Neither the watchdog nor its pipe may keep this process's event loop alive.
  watchdog.unref();
  const stdin = watchdog.stdin as Socket | null;
  stdin?.unref();
  // Writing is never done; an error here (the watchdog died) must not crash asyncfn.
  stdin?.on('error', () => undefined);
  watchdog.on('error', () => undefined);
  let armed = true;
  return {
    pid: watchdog.pid,
    disarm: () => {
      if (!armed) return;
      armed = false;
      watchdog.kill('SIGKILL');
      stdin?.destroy();
    },
  };
}
