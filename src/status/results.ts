import type { KV } from '@nats-io/kv';

/**
 * Function results kept for `GET /async-function/<call-id>/result` (raw body bytes; status and
 * content type live in the invocation record). Same TTL as the records.
 */
export interface ResultStore {
  /** Resolves once JetStream stored it, so a record that says "stored" is never ahead of its result. */
  put(callId: string, body: Uint8Array): Promise<void>;
  get(callId: string): Promise<Uint8Array | undefined>;
}

/** The result store on the results bucket `kv` (RESULTS_BUCKET in src/queue/topology.ts). */
export function resultStore(kv: KV): ResultStore {
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
