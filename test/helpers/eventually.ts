import type { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * The tests' bounded waits, one helper per purpose. Each rejects after its bound with `what` in
 * the message; prefer awaiting an event (test/helpers/inbox.ts, http-servers' waitFor*) to polling.
 */

/**
 * Polls `probe` every `everyMs` until it returns true; bounded by `timeoutMs`. A probe that throws
 * stops the wait with its error (e.g. a child process that died).
 */
export async function pollUntil(probe: () => Promise<boolean>, what: string, timeoutMs: number, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await delay(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Polls `probe` until it returns true, for state only observable from outside (a health endpoint).
 * A probe that throws counts as "not yet". Bounded: rejects after `timeoutMs` with `what` in the message.
 */
export async function eventually(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000, everyMs = 50): Promise<void> {
  return pollUntil(() => probe().catch(() => false), what, timeoutMs, everyMs);
}

/** Rejects after `ms` with `what` in the message, unless `promise` settles first. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `condition` holds after an `event`; rejects with a clear message after `timeoutMs`. */
export function waitForEvent(emitter: EventEmitter, event: string, condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  if (condition()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onEvent = (): void => {
      if (!condition()) return;
      cleanup();
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
    };
    emitter.on(event, onEvent);
  });
}
