import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { AsyncFnError } from '../errors.js';
import { watchExit } from './exit-watchdog.js';

/** The generated config in the server's directory; its path on the command line identifies the server (`nats-server -c <dir>/nats-server.conf`). */
export const NATS_CONFIG_FILE = 'nats-server.conf';

/** The `nats-server` binary is not on PATH. */
export class NatsServerMissingError extends AsyncFnError<'ASYNCFN_ERR_NATS_SERVER_MISSING'> {
  constructor(opts?: ErrorOptions) {
    super('ASYNCFN_ERR_NATS_SERVER_MISSING', [], opts);
  }
}

export interface LocalNatsOptions {
  /** Directory for the config, ports file and JetStream store; created if missing. */
  readonly dir: string;
  /** Port to listen on; -1 (default) picks a free one. */
  readonly port?: number;
  /** Extra lines appended to the generated server config. */
  readonly extraConfig?: string;
}

/** A nats-server child process with JetStream, on loopback. */
export interface LocalNatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number;
  /** Graceful stop (SIGTERM), waiting for the process to exit. */
  stop(): Promise<void>;
  /** kill -9, waiting for the process to exit. */
  kill9(): Promise<void>;
  /** Starts the server again on the same port with the same store. */
  restart(): Promise<void>;
}

/**
 * Starts nats-server from a generated config. `port: -1` with a ports file gives a free port
 * without the race of probing for one (the approach of nats.js's test launcher).
 */
export async function startLocalNats(opts: LocalNatsOptions): Promise<LocalNatsServer> {
  const storeDir = join(opts.dir, 'jetstream');
  await mkdir(storeDir, { recursive: true });
  let proc = await launch(opts.dir, storeDir, opts.port ?? -1, opts.extraConfig);
  const port = proc.port;
  const url = `nats://127.0.0.1:${port}`;
  const server: LocalNatsServer = {
    url,
    port,
    storeDir,
    get pid() {
      return proc.child.pid ?? -1;
    },
    stop: () => terminate(proc.child, 'SIGTERM'),
    kill9: () => terminate(proc.child, 'SIGKILL'),
    restart: async () => {
      await terminate(proc.child, 'SIGTERM');
      proc = await launch(opts.dir, storeDir, port, opts.extraConfig);
    },
  };
  return server;
}

interface Launched {
  child: ChildProcess;
  port: number;
}

async function launch(dir: string, storeDir: string, port: number, extraConfig = ''): Promise<Launched> {
  const conf = join(dir, NATS_CONFIG_FILE);
  await writeFile(conf, ['host: 127.0.0.1', `port: ${port}`, `ports_file_dir: "${dir}"`, `jetstream { store_dir: "${storeDir}" }`, extraConfig].join('\n'));
  // Its own process group: Ctrl-C in a terminal must reach asyncfn only, which drains its worker
  // while NATS is still up and then stops the server itself. The price: a kill of asyncfn's
  // group (a supervisor's SIGKILL) does not reach it, so a watchdog stops it when asyncfn dies.
  const child = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const watchdog = child.pid === undefined ? undefined : watchExit(child.pid);
  // SIGTERM: nats-server flushes its store and exits; a SIGKILL could cut a write short.
  const killOnExit = (): void => void child.kill('SIGTERM');
  process.once('exit', killOnExit);
  child.once('exit', () => {
    process.off('exit', killOnExit);
    // In the callback that reaped it: its pid cannot have been reused yet.
    watchdog?.disarm();
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new NatsServerMissingError({ cause: err }) : err));
    child.once('exit', (code) => reject(new Error(`nats-server exited with code ${code} before it was ready:\n${stderr}`)));
  });
  exited.catch(() => undefined);
  const ready = readPortsFile(dir, child);
  const found = await Promise.race([ready, exited]);
  return { child, port: found };
}

/** nats-server writes `nats-server_<pid>.ports` once it listens; poll for it (bounded to 10 s). */
async function readPortsFile(dir: string, child: ChildProcess): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.pid !== undefined) {
      const file = join(dir, `nats-server_${child.pid}.ports`);
      const text = await readFile(file, 'utf8').catch(() => undefined);
      if (text) {
        const { nats } = JSON.parse(text) as { nats: string[] };
        const port = Number(new URL(nats[0]!).port);
        await rm(file, { force: true });
        return port;
      }
    }
    await delay(10);
  }
  child.kill('SIGKILL');
  throw new Error('nats-server did not become ready within 10 s');
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}
