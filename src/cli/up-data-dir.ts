import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/**
 * Where `asyncfn up` leaves the URL of the nats-server it started. Apart from up.ts so that the
 * operator commands (dlq, status, queues) find it without loading what `up` runs.
 */

/** `asyncfn up`'s data directory, relative to the working directory. */
export const DEFAULT_DATA_DIR = '.asyncfn';
/** The local nats-server's directory (config and JetStream store) in the data directory. */
export const NATS_DIR = 'nats';
/** The lock file of the `asyncfn up` using the data directory (src/cli/up-lock.ts). */
export const UP_LOCK_FILE = 'up.lock';
/** The file in the data directory holding the local nats-server's URL while it runs. */
export const NATS_URL_FILE = 'nats.url';

/** The URL of a local nats-server started by `asyncfn up` in `dataDir`, if one is running. */
export async function readLocalNatsUrl(dataDir: string): Promise<string | undefined> {
  const text = await readFile(join(resolve(dataDir), NATS_URL_FILE), 'utf8').catch(() => undefined);
  return text?.trim() || undefined;
}
