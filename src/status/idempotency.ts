import { createHash } from 'node:crypto';
import { JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { QueueUnavailableError } from '../queue/errors.js';

/** The outcome of claiming a key: who was first, and the ids every request with the key shares. */
export interface IdempotencyClaim {
  /** true for the request that claimed the key; false for a repeat, which answers with `callId`. */
  readonly first: boolean;
  /** The first request's call id. */
  readonly callId: string;
  /** `Nats-Msg-Id` for every publish under this key, so JetStream stores the invocation once. */
  readonly msgId: string;
  /** The KV key (a digest: keys may hold any characters, KV keys may not). */
  readonly kvKey: string;
}

/**
 * Idempotency keys, built on JetStream alone: a KV `create` (atomic: fails if the key exists)
 * elects the first request, and `Nats-Msg-Id` deduplication makes the stream store one invocation
 * however many requests publish it. A repeat publishes too, under the first call id: if the first
 * request's publish failed after its claim, the repeat's copy becomes the invocation, so a 202
 * always stands for a stored invocation.
 */
export interface IdempotencyClaims {
  /** Claims `key` within `scope` (the function) for `callId`. */
  claim(scope: string, key: string, callId: string): Promise<IdempotencyClaim>;
  /** Gives a first claim back when its invocation could not be stored (best effort). */
  release(claim: IdempotencyClaim): Promise<void>;
}

/** A key's digest and message id; the scope keeps equal keys of different functions apart. */
export function claimIds(scope: string, key: string): { kvKey: string; msgId: string } {
  const digest = createHash('sha256').update(scope).update('\n').update(key).digest('hex');
  return { kvKey: digest, msgId: `asyncfn-idem-${digest}` };
}

/** JetStream's "wrong last sequence": the KV key already exists. */
const KEY_EXISTS = 10071;
/** A key released between a repeat's failed create and its read is claimed again, this many times at most. */
const CLAIM_ROUNDS = 3;

/** The claims on the idempotency bucket `kv` (IDEMPOTENCY_BUCKET in src/queue/topology.ts). */
export function idempotencyClaims(kv: KV): IdempotencyClaims {
  return {
    async claim(scope, key, callId) {
      const { kvKey, msgId } = claimIds(scope, key);
      for (let round = 0; round < CLAIM_ROUNDS; round++) {
        try {
          await kv.create(kvKey, callId);
          return { first: true, callId, msgId, kvKey };
        } catch (err) {
          if (!(err instanceof JetStreamApiError && err.code === KEY_EXISTS)) throw err;
        }
        const entry = await kv.get(kvKey);
        if (entry && entry.operation === 'PUT' && entry.length > 0) return { first: false, callId: entry.string(), msgId, kvKey };
      }
      throw new QueueUnavailableError('the idempotency key is being claimed and released concurrently; try again');
    },
    async release(claim) {
      if (claim.first) await kv.delete(claim.kvKey);
    },
  };
}
