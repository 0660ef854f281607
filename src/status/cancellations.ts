import type { KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { Subject, type Observable } from 'rxjs';
import { openKvBucket, type KvBucketOptions } from './records.js';

/** KV bucket of cancellation markers, keyed by call id. */
export const CANCELLATIONS_BUCKET = 'asyncfn_cancellations';

/** Asks for a cancellation; durable, so a worker that delivers the message later still skips it. */
export interface CancellationRequests {
  request(callId: string): Promise<void>;
}

/** A worker's view of cancellations: everything asked so far, and each new one as it comes. */
export interface CancellationWatch {
  has(callId: string): boolean;
  readonly requested$: Observable<string>;
  stop(): void;
}

export async function openCancellationRequests(nc: NatsConnection, opts: KvBucketOptions): Promise<CancellationRequests> {
  const kv = await openKvBucket(nc, CANCELLATIONS_BUCKET, opts);
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
export async function watchCancellations(nc: NatsConnection, opts: KvBucketOptions): Promise<CancellationWatch> {
  const kv = await openKvBucket(nc, CANCELLATIONS_BUCKET, opts);
  const cancelled = new Set<string>();
  const requested$ = new Subject<string>();
  const existing = (await kv.status()).values;
  const watcher = await kv.watch();
  let markInitialized: () => void = () => undefined;
  const initialized = new Promise<void>((resolve) => (markInitialized = resolve));
  if (existing === 0) markInitialized();
  void (async () => {
    for await (const entry of watcher as AsyncIterable<KvWatchEntry>) {
      if (entry.operation === 'PUT') {
        cancelled.add(entry.key);
        requested$.next(entry.key);
      } else {
        cancelled.delete(entry.key);
      }
      if (!entry.isUpdate && entry.delta === 0) markInitialized();
    }
  })();
  await initialized;
  return {
    has: (callId) => cancelled.has(callId),
    requested$: requested$.asObservable(),
    stop: () => {
      watcher.stop();
      requested$.complete();
    },
  };
}
