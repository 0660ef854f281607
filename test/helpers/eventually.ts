import { setTimeout as delay } from 'node:timers/promises';

/**
 * Polls `probe` until it returns true, for state only observable from outside (a health endpoint).
 * Bounded: rejects after `timeoutMs` with `what` in the message.
 */
export async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await delay(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
