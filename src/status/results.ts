import type { KV } from '@nats-io/kv';
import type { PayloadStore } from '../queue/payload-store.js';

/**
 * Results up to this many bytes are kept in the results KV bucket; larger ones (up to
 * `result_max_size`) in the payload bucket, as large request bodies are. 256 KiB: well inside
 * NATS's default 1 MiB max_payload, the KV value limit.
 */
export const RESULT_INLINE_MAX_BYTES = 256 * 1024;

/** A kept result as read back: small ones whole, large ones as a stream of their stored chunks. */
export type StoredResult = { readonly bytes: Uint8Array } | { readonly size: number; readonly chunks: AsyncIterable<Uint8Array> };

/**
 * Function results kept for `GET /async-function/<call-id>/result` (raw body bytes; status and
 * content type live in the invocation record). Same TTL as the records.
 */
export interface ResultStore {
  /** Resolves once JetStream stored it, so a record that says "stored" is never ahead of its result. */
  put(callId: string, body: Uint8Array): Promise<void>;
  get(callId: string): Promise<StoredResult | undefined>;
}

/** The object a large result of `callId` is kept as. */
export const resultObjectName = (callId: string): string => `result.${callId}`;

/**
 * The result store on the results bucket `kv` (RESULTS_BUCKET in src/queue/topology.ts) and, for
 * results above {@link RESULT_INLINE_MAX_BYTES}, the payload bucket (without one, they go to KV,
 * which refuses what passes its limit).
 */
export function resultStore(kv: KV, payloads?: PayloadStore): ResultStore {
  return {
    async put(callId, body) {
      if (payloads && body.length > RESULT_INLINE_MAX_BYTES) {
        await payloads.put([body], { name: resultObjectName(callId) });
        return;
      }
      await kv.put(callId, body);
    },
    async get(callId) {
      const entry = await kv.get(callId);
      if (entry && entry.operation === 'PUT') return { bytes: entry.value };
      return payloads?.get(resultObjectName(callId));
    },
  };
}
