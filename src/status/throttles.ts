import type { KV } from '@nats-io/kv';

/*
 * The throttle ledger (THROTTLES_BUCKET in src/queue/topology.ts): how many deliveries of one
 * invocation were no attempt, keyed by call id: throttles (adaptive concurrency) and deliveries
 * the worker gave back unworked (a pull it had just ended, a second delivery of an invocation
 * running there). JetStream's delivery count includes them, so a redelivery on any replica
 * subtracts them: attempt = deliveryCount − count. Written only for such a delivery, read only on
 * a redelivery; the bucket's TTL (records_ttl) removes what is left.
 */

/** The ledger as the invocation machine's effects use it. */
export interface ThrottleLedger {
  /** Throttled deliveries of this invocation so far; 0 when none are recorded. */
  load(invocation: LedgerKey): Promise<number>;
  /** Stores `count`; resolves once JetStream stored it. */
  save(invocation: LedgerKey, count: number): Promise<void>;
}

/** What identifies one invocation in the ledger. */
export interface LedgerKey {
  readonly callId: string;
  /**
   * The enqueue time tells this invocation from an earlier one with the same call id (a dead
   * letter replayed, which gets a new enqueue time; a caller reusing its X-Call-Id): an entry
   * written for another enqueue time is not this invocation's.
   */
  readonly enqueuedAtMs: number;
}

interface Entry {
  readonly throttled: number;
  readonly enqueuedAtMs: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bytes stored for `count` throttles of `invocation`. */
export function encodeThrottles(invocation: LedgerKey, count: number): Uint8Array {
  const entry: Entry = { throttled: count, enqueuedAtMs: invocation.enqueuedAtMs };
  return encoder.encode(JSON.stringify(entry));
}

/** The count an entry holds for `invocation`: 0 when it is another invocation's, or unreadable. */
export function decodeThrottles(invocation: LedgerKey, data: Uint8Array): number {
  try {
    const entry = JSON.parse(decoder.decode(data)) as Partial<Entry>;
    if (entry.enqueuedAtMs !== invocation.enqueuedAtMs) return 0;
    const n = entry.throttled;
    return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/**
 * The ledger on bucket `kv`; `put` is the confirmed write (the worker's confirmer, as for final
 * records), default `kv.put`.
 */
export function throttleLedger(kv: KV, put?: (key: string, data: Uint8Array) => Promise<unknown>): ThrottleLedger {
  const write = put ?? ((key: string, data: Uint8Array) => kv.put(key, data));
  return {
    async load(invocation) {
      const entry = await kv.get(invocation.callId);
      return entry && entry.operation === 'PUT' ? decodeThrottles(invocation, entry.value) : 0;
    },
    async save(invocation, count) {
      await write(invocation.callId, encodeThrottles(invocation, count));
    },
  };
}
