import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { InvocationRecord, InvocationState } from '../../src/status/records.js';

/** Resolves once the record of `callId` is in `state`: a watch on its key, no polling. */
export async function recordReaches(kv: KV, callId: string, state: InvocationState): Promise<void> {
  const watcher = await kv.watch({ key: callId });
  try {
    for await (const entry of watcher as AsyncIterable<KvWatchEntry>) {
      if (entry.operation === 'PUT' && entry.json<InvocationRecord>().state === state) return;
    }
  } finally {
    watcher.stop();
  }
}
