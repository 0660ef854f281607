import type { NatsConnection } from '@nats-io/nats-core';
import { openKvBucket, type KvBucketOptions } from './records.js';

/** KV bucket holding the function results callers asked to keep, keyed by call id. */
export const RESULTS_BUCKET = 'asyncfn_results';

/**
 * Function results kept for `GET /async-function/<call-id>/result` (raw body bytes; status and
 * content type live in the invocation record). Same TTL as the records.
 */
export interface ResultStore {
  /** Resolves once JetStream stored it, so a record that says "stored" is never ahead of its result. */
  put(callId: string, body: Uint8Array): Promise<void>;
  get(callId: string): Promise<Uint8Array | undefined>;
}

export async function openResults(nc: NatsConnection, opts: KvBucketOptions): Promise<ResultStore> {
  const kv = await openKvBucket(nc, RESULTS_BUCKET, opts);
  return {
    async put(callId, body) {
      await kv.put(callId, body);
    },
    async get(callId) {
      const entry = await kv.get(callId);
      return entry && entry.operation === 'PUT' ? entry.value : undefined;
    },
  };
}
