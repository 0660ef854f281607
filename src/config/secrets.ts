import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

/**
 * Reading secret files: OpenFaaS mounts each secret as one file under secret_mount_path, and
 * asyncfn takes every credential from a file so none sits in the environment or a log line.
 * Reading happens once, when a component starts; a missing or empty secret that a setting needs
 * stops startup with a message naming the file and the setting (never the content).
 */

/** The trimmed content of `file`; `setting` names what needs it, for the error message. */
export async function readSecretFile(file: string, setting: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as Error).message})`;
    throw new ConfigError([`${setting}: secret file ${file} ${reason}`], { cause: err });
  }
  const secret = text.trim();
  if (secret === '') throw new ConfigError([`${setting}: secret file ${file} is empty`]);
  return secret;
}

/** A secret named as in OpenFaaS (e.g. "basic-auth-user") under the mount path. */
export function readMountedSecret(mountPath: string, name: string, setting: string): Promise<string> {
  return readSecretFile(join(mountPath, name), setting);
}

/** A secret file holding several values, one per line (blank lines and # comments ignored). */
export async function readMountedSecretLines(mountPath: string, name: string, setting: string): Promise<string[]> {
  const text = await readMountedSecret(mountPath, name, setting);
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length === 0) throw new ConfigError([`${setting}: secret file ${join(mountPath, name)} has no values`]);
  return lines;
}
