import type { KV, KvWatchEntry } from '@nats-io/kv';

/* Cancellation markers live in the cancellations bucket (CANCELLATIONS_BUCKET in src/queue/topology.ts), keyed by call id. */

/** Asks for a cancellation; durable, so a worker that delivers the message later still skips it. */
export interface CancellationRequests {
  request(callId: string): Promise<void>;
}

/** A worker's view of cancellations: everything asked so far, and each new one as it comes. */
export interface CancellationWatch {
  has(callId: string): boolean;
  /** Calls `listener` with the call id of each cancellation asked for from now on; returns what stops it. */
  onRequested(listener: (callId: string) => void): () => void;
  stop(): void;
}

/** Cancellation requests on the cancellations bucket `kv`. */
export function cancellationRequests(kv: KV): CancellationRequests {
  return {
    async request(callId) {
      await kv.put(callId, String(Date.now()));
    },
  };
}

/**
 * Mirrors the cancellation bucket in memory: one watch per worker instead of a lookup per message.
 * Resolves once the markers already in the bucket have been read, so no delivery is admitted
 * before the worker knows what was cancelled.
 */
export async function watchCancellations(kv: KV): Promise<CancellationWatch> {
  const cancelled = new Set<string>();
  const listeners = new Set<(callId: string) => void>();
  const existing = (await kv.status()).values;
  const watcher = await kv.watch();
  let markInitialized: () => void = () => undefined;
  const initialized = new Promise<void>((resolve) => (markInitialized = resolve));
  if (existing === 0) markInitialized();
  void (async () => {
    for await (const entry of watcher as AsyncIterable<KvWatchEntry>) {
      if (entry.operation === 'PUT') {
        cancelled.add(entry.key);
        for (const listener of [...listeners]) listener(entry.key);
      } else {
        cancelled.delete(entry.key);
      }
      // nats.js flags the last of the existing entries as an update already (its count reaches the
      // total before the entry is made), so `isUpdate` cannot tell it apart: nothing pending can.
      if (entry.delta === 0) markInitialized();
    }
  })();
  await initialized;
  return {
    has: (callId) => cancelled.has(callId),
    onRequested: (listener) => {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    stop: () => {
      watcher.stop();
      listeners.clear();
    },
  };
}
