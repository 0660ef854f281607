import type { KV } from '@nats-io/kv';
import type { LedgerEntry } from '../../actors/attempt.policy.js';

/*
 * The attempt ledger (THROTTLES_BUCKET in src/queue/topology.ts), keyed by call id: how many
 * attempts of one invocation started, and how many of its deliveries were throttled. A redelivery
 * reads it and records its attempt before the function runs (actors/attempt.policy.ts says why
 * JetStream's delivery count is not the attempt). Written only off the first delivery's happy
 * path: a redelivery, a throttle, a first delivery given back unworked; the bucket's TTL
 * (records_ttl) removes what is left.
 */

/** The ledger as the worker uses it. */
export interface AttemptLedger {
  /** The entry of this invocation; undefined when there is none (or it is another invocation's, or unreadable). */
  load(invocation: LedgerKey): Promise<LedgerEntry | undefined>;
  /** Stores `entry`; resolves once JetStream stored it. */
  save(invocation: LedgerKey, entry: Required<LedgerEntry>): Promise<void>;
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

interface StoredEntry {
  readonly attempts?: number;
  readonly throttled: number;
  readonly enqueuedAtMs: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The bytes stored for `entry` of `invocation`. */
export function encodeLedgerEntry(invocation: LedgerKey, entry: Required<LedgerEntry>): Uint8Array {
  const stored: StoredEntry = { attempts: entry.attempts, throttled: entry.throttled, enqueuedAtMs: invocation.enqueuedAtMs };
  return encoder.encode(JSON.stringify(stored));
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;

/**
 * The entry stored for `invocation`: undefined when it is another invocation's or unreadable. An
 * older worker's entry has no `attempts` (it counted throttles and deliveries given back).
 */
export function decodeLedgerEntry(invocation: LedgerKey, data: Uint8Array): LedgerEntry | undefined {
  try {
    const stored = JSON.parse(decoder.decode(data)) as Partial<StoredEntry> | null;
    if (stored?.enqueuedAtMs !== invocation.enqueuedAtMs || !isCount(stored.throttled)) return undefined;
    if (stored.attempts === undefined) return { throttled: stored.throttled };
    return isCount(stored.attempts) ? { attempts: stored.attempts, throttled: stored.throttled } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The ledger on bucket `kv`; `put` is the confirmed write (the worker's confirmer, as for final
 * records), default `kv.put`.
 */
export function attemptLedger(kv: KV, put?: (key: string, data: Uint8Array) => Promise<unknown>): AttemptLedger {
  const write = put ?? ((key: string, data: Uint8Array) => kv.put(key, data));
  return {
    async load(invocation) {
      const entry = await kv.get(invocation.callId);
      return entry && entry.operation === 'PUT' ? decodeLedgerEntry(invocation, entry.value) : undefined;
    },
    async save(invocation, entry) {
      await write(invocation.callId, encodeLedgerEntry(invocation, entry));
    },
  };
}
