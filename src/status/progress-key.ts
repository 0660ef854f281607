import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { readSecretFile } from '../config/secrets.js';

/** The secret file (under `secret_mount_path`) that, when present, holds the progress URL signing key. */
export const PROGRESS_KEY_FILE = 'progress-signing-key';
/** The key's name in the keys bucket (KEYS_BUCKET) when no secret file holds it. */
export const PROGRESS_KEY_NAME = 'progress-signing';
/** Bytes of a generated key: as long as the HMAC-SHA256 output. */
const GENERATED_KEY_BYTES = 32;

/** Where the key came from, for the startup log. */
export interface ProgressKey {
  readonly key: Uint8Array;
  readonly source: 'secret' | 'kv';
}

/**
 * The progress URL signing key, which the gateway (verifying) and the worker (signing) must share.
 * The secret file `progress-signing-key` under `secretMountPath` when it exists (its trimmed text,
 * as UTF-8 bytes; every gateway and worker must mount the same file). Otherwise 32 random bytes
 * kept in the keys bucket: the first process to start creates the key (a KV create, so of two
 * racing the first writer wins and the other reads its key) and every later one reads it.
 */
export async function loadProgressKey(secretMountPath: string, keys: () => Promise<KV>): Promise<ProgressKey> {
  const file = join(secretMountPath, PROGRESS_KEY_FILE);
  if (await exists(file)) {
    const text = await readSecretFile(file, 'progress URLs');
    return { key: new TextEncoder().encode(text), source: 'secret' };
  }
  return { key: await sharedKey(await keys()), source: 'kv' };
}

async function sharedKey(kv: KV): Promise<Uint8Array> {
  const existing = await kv.get(PROGRESS_KEY_NAME);
  if (existing && existing.operation === 'PUT' && existing.length > 0) return existing.value;
  try {
    const key = randomBytes(GENERATED_KEY_BYTES);
    await kv.create(PROGRESS_KEY_NAME, key);
    return key;
  } catch (err) {
    // 10071: another process created it first; its key is the one everybody uses.
    if (!(err instanceof JetStreamApiError && err.code === 10071)) throw err;
    const winner = await kv.get(PROGRESS_KEY_NAME);
    if (!winner || winner.length === 0) throw err;
    return winner.value;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
