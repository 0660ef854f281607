import type { KV, KvWatchEntry } from '@nats-io/kv';

/*
 * Cancellation markers live in the cancellations bucket (CANCELLATIONS_BUCKET in src/queue/topology.ts),
 * keyed by call id. A marker's value is a unix ms time: it cancels the deliveries of an invocation
 * enqueued at or before it (markerApplies), so a dead-letter replay or a new invocation reusing the
 * call id, both enqueued later, is not cancelled by a marker meant for the one before.
 */

/** Asks for a cancellation; durable, so a worker that delivers the message later still skips it. */
export interface CancellationRequests {
  /**
   * Writes the marker of `callId`. `enqueuedAtMs`, when known (the record's), is the enqueue time of
   * the invocation meant: the marker is never older than it, whatever this host's clock says.
   */
  request(callId: string, enqueuedAtMs?: number): Promise<void>;
}

/** A worker's view of cancellations: everything asked so far, and each new one as it comes. */
export interface CancellationWatch {
  /** Whether the invocation `callId` enqueued at `enqueuedAtMs` was asked to be cancelled. */
  cancels(callId: string, enqueuedAtMs: number): boolean;
  /**
   * The invocation `callId` enqueued at `enqueuedAtMs` ended otherwise than cancelled (the DELETE
   * came after its function had answered): deletes the marker meant for it, if this worker has
   * seen one, so that it outlives the invocation in nobody's view. Undefined when there is none
   * (nearly always: no promise per invocation).
   */
  outlived(callId: string, enqueuedAtMs: number): Promise<void> | undefined;
  /** Calls `listener` with the call id of each cancellation asked for from now on; returns what stops it. */
  onRequested(listener: (callId: string) => void): () => void;
  stop(): void;
}

/** A marker as a worker keeps it. */
export interface Marker {
  /** The marker's time (its value), unix ms; NaN when unreadable: then it cancels any delivery. */
  readonly atMs: number;
  /** When the server stored it, unix ms: its age counts from there. */
  readonly storedAtMs: number;
  /** Its revision in the bucket: the delete expects it, so a newer marker is never deleted. */
  readonly revision: number;
}

/** The value a marker is written with: now, or the enqueue time of the invocation meant if this clock is behind it. */
export function markerTimeMs(nowMs: number, enqueuedAtMs: number | undefined): number {
  return enqueuedAtMs === undefined || !(enqueuedAtMs > nowMs) ? nowMs : enqueuedAtMs;
}

/** Whether `marker` cancels a delivery of the invocation enqueued at `enqueuedAtMs`: one enqueued after it is another invocation. */
export function markerApplies(marker: Marker, enqueuedAtMs: number): boolean {
  return !(marker.atMs < enqueuedAtMs);
}

/** Whether the bucket has forgotten `marker` by `nowMs` (its age limit `ttlMs`, 0 = none). */
export function markerExpired(marker: Marker, ttlMs: number, nowMs: number): boolean {
  return ttlMs > 0 && nowMs - marker.storedAtMs >= ttlMs;
}

/** Cancellation requests on the cancellations bucket `kv`. */
export function cancellationRequests(kv: KV, now: () => number = Date.now): CancellationRequests {
  return {
    async request(callId, enqueuedAtMs) {
      await kv.put(callId, String(markerTimeMs(now(), enqueuedAtMs)));
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
        markers.put(entry.key, { atMs: Number(entry.string()), storedAtMs: entry.created.getTime(), revision: entry.revision });
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
    cancels(callId, enqueuedAtMs) {
      const marker = markers.get(callId);
      return marker !== undefined && markerApplies(marker, enqueuedAtMs);
    },
    outlived(callId, enqueuedAtMs) {
      const marker = markers.get(callId);
      if (marker === undefined || !markerApplies(marker, enqueuedAtMs)) return undefined;
      // The watch removes it from memory when the delete comes back.
      return kv.delete(callId, { previousSeq: marker.revision });
    },
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
