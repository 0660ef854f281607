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

/** A marker as a worker keeps it. */
export interface Marker {
  /** When the server stored it, unix ms: its age counts from there. */
  readonly storedAtMs: number;
}

/** Whether the bucket has forgotten `marker` by `nowMs` (its age limit `ttlMs`, 0 = none). */
export function markerExpired(marker: Marker, ttlMs: number, nowMs: number): boolean {
  return ttlMs > 0 && nowMs - marker.storedAtMs >= ttlMs;
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
 * Markers in the order the bucket stored them, the oldest first. The bucket forgets a marker once
 * its age limit passes and says nothing, so those are dropped here by age: from the front at each
 * new marker, and on a lookup that finds one; no timer.
 */
export class MarkerMap {
  private readonly markers = new Map<string, Marker>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.markers.size;
  }

  put(callId: string, marker: Marker): void {
    // Deleted first, so that the map's order stays the order of storing.
    this.markers.delete(callId);
    this.markers.set(callId, marker);
    this.prune();
  }

  delete(callId: string): void {
    this.markers.delete(callId);
  }

  /** The marker of `callId` the bucket still holds. */
  get(callId: string): Marker | undefined {
    const marker = this.markers.get(callId);
    if (marker === undefined || !markerExpired(marker, this.ttlMs, this.now())) return marker;
    this.markers.delete(callId);
    return undefined;
  }

  private prune(): void {
    if (this.ttlMs <= 0) return;
    const nowMs = this.now();
    for (const [callId, marker] of this.markers) {
      if (!markerExpired(marker, this.ttlMs, nowMs)) return;
      this.markers.delete(callId);
    }
  }
}

/**
 * Mirrors the cancellation bucket in memory: one watch per worker instead of a lookup per message.
 * Resolves once the markers already in the bucket have been read, so no delivery is admitted
 * before the worker knows what was cancelled.
 */
export async function watchCancellations(kv: KV, now: () => number = Date.now): Promise<CancellationWatch> {
  const status = await kv.status();
  const markers = new MarkerMap(status.ttl, now);
  const listeners = new Set<(callId: string) => void>();
  const watcher = await kv.watch();
  let markInitialized: () => void = () => undefined;
  const initialized = new Promise<void>((resolve) => (markInitialized = resolve));
  if (status.values === 0) markInitialized();
  void (async () => {
    for await (const entry of watcher as AsyncIterable<KvWatchEntry>) {
      if (entry.operation === 'PUT') {
        markers.put(entry.key, { storedAtMs: entry.created.getTime() });
        for (const listener of [...listeners]) listener(entry.key);
      } else {
        markers.delete(entry.key);
      }
      // nats.js flags the last of the existing entries as an update already (its count reaches the
      // total before the entry is made), so `isUpdate` cannot tell it apart: nothing pending can.
      if (entry.delta === 0) markInitialized();
    }
  })();
  await initialized;
  return {
    has: (callId) => markers.get(callId) !== undefined,
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
