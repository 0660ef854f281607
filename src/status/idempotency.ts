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
  /**
   * When the first request's invocation may run (unix ms: its X-Delay-Seconds or X-Not-Before),
   * undefined when it was not delayed. A repeat publishes with the same schedule, so its copy goes
   * to the stream the first's went to, where `msgId` makes it a duplicate.
   */
  readonly notBeforeMs?: number | undefined;
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
  /**
   * Claims `key` within `scope` (the function) for `callId`, to run at `notBeforeMs` (unix ms;
   * undefined = now). A repeat gets the first request's call id and schedule.
   */
  claim(scope: string, key: string, callId: string, notBeforeMs?: number): Promise<IdempotencyClaim>;
  /** Gives a first claim back when its invocation could not be stored (best effort). */
  release(claim: IdempotencyClaim): Promise<void>;
}

/** A key's digest and message id; the scope keeps equal keys of different functions apart. */
export function claimIds(scope: string, key: string): { kvKey: string; msgId: string } {
  const digest = createHash('sha256').update(scope).update('\n').update(key).digest('hex');
  return { kvKey: digest, msgId: `asyncfn-idem-${digest}` };
}

/**
 * A claim's KV value: the first call id, then its not-before time after a space (no call id holds
 * one) when it was delayed. An undelayed claim is the bare call id, as before the schedule was kept.
 */
export function encodeClaim(callId: string, notBeforeMs: number | undefined): string {
  return notBeforeMs === undefined ? callId : `${callId} ${notBeforeMs}`;
}

/** Pure: a claim's KV value read back; a value with no readable time is an undelayed claim. */
export function decodeClaim(value: string): { callId: string; notBeforeMs: number | undefined } {
  const space = value.indexOf(' ');
  if (space < 0) return { callId: value, notBeforeMs: undefined };
  const notBeforeMs = Number(value.slice(space + 1));
  return { callId: value.slice(0, space), notBeforeMs: Number.isSafeInteger(notBeforeMs) ? notBeforeMs : undefined };
}

/** JetStream's "wrong last sequence": the KV key already exists. */
const KEY_EXISTS = 10071;
/** A key released between a repeat's failed create and its read is claimed again, this many times at most. */
const CLAIM_ROUNDS = 3;

/** The claims on the idempotency bucket `kv` (IDEMPOTENCY_BUCKET in src/queue/topology.ts). */
export function idempotencyClaims(kv: KV): IdempotencyClaims {
  return {
    async claim(scope, key, callId, notBeforeMs) {
      const { kvKey, msgId } = claimIds(scope, key);
      for (let round = 0; round < CLAIM_ROUNDS; round++) {
        try {
          await kv.create(kvKey, encodeClaim(callId, notBeforeMs));
          return { first: true, callId, notBeforeMs, msgId, kvKey };
        } catch (err) {
          if (!(err instanceof JetStreamApiError && err.code === KEY_EXISTS)) throw err;
        }
        const entry = await kv.get(kvKey);
        if (entry && entry.operation === 'PUT' && entry.length > 0) return { first: false, ...decodeClaim(entry.string()), msgId, kvKey };
      }
      throw new QueueUnavailableError('the idempotency key is being claimed and released concurrently; try again');
    },
    async release(claim) {
      if (claim.first) await kv.delete(claim.kvKey);
    },
  };
}
