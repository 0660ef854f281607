import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { defaultBurst, intervalMs, takeTokens, type Rate } from './rate.js';
import type { RateLimitKey } from './rate-keys.js';

/**
 * Rate limits shared by every worker replica through one JetStream KV bucket
 * (`asyncfn_rate_limits`, RATE_LIMITS_BUCKET in src/queue/topology.ts): one key per limiter
 * holding its GCRA state, the TAT (rate.ts), written with compare-and-set on the key's revision.
 * A token is granted only by a write that JetStream accepted at the revision the grant was
 * computed from, so two replicas can never spend the same token; a replica that loses the race
 * re-reads and computes again.
 *
 * Round trips: each replica remembers the last (TAT, revision) it saw per key. Uncontended, an
 * acquire is ONE update at the remembered revision. A limiter the cache already shows as spent
 * answers with no round trip at all: the TAT only moves forward, so a stale TAT can only
 * under-state what others took (the bucket TTL outlasts any TAT, see MAX_RATE_PERIOD_MS, so an
 * expired key never holds a TAT in the future). A key this replica has not seen costs a read
 * first; a conflict costs a read and a write again.
 *
 * Clock: each replica uses its own wall clock (the TAT is an absolute time, ms since the epoch).
 * Replicas whose clocks differ by δ can together grant at most δ × rate tokens more than the
 * limit, ONCE (the fast clock sees room the slow one does not), not per period: NTP keeps δ in
 * the milliseconds, i.e. well under one token for any rate the bucket can serve.
 */

/** What {@link SharedRateLimiter.acquire} grants. */
export interface RateGrant {
  /** Tokens granted, 0..n; each is spent. */
  readonly granted: number;
  /**
   * When fewer than n were granted: ms until asking again can get one more token (≥ 1; after a
   * lost race, a short pause). 0 when all n were granted.
   */
  readonly retryInMs: number;
}

/** Token buckets shared across processes. */
export interface SharedRateLimiter {
  /**
   * Takes up to `n` tokens from the limiter `key` at `rate` (with `burst`, default
   * defaultBurst(rate): a tenth of the count, at least 1). Never grants without a write accepted
   * by JetStream. Rejects only when NATS fails (no answer, no bucket), never on contention.
   */
  acquire(key: RateLimitKey, n: number, rate: Rate, burst?: number): Promise<RateGrant>;
}

export interface SharedRateLimiterOptions {
  /** The clock, ms since the epoch; default Date.now. Tests inject a fake one. */
  readonly now?: () => number;
  /** Compare-and-set rounds per acquire before it answers "0 granted, retry soon"; default 5. */
  readonly maxRounds?: number;
  /** Keys whose (TAT, revision) a replica remembers, least recently used first out; default 10,000. */
  readonly cacheSize?: number;
}

/** What this replica last saw of a key: its TAT and revision (0: the key does not exist). */
interface Seen {
  readonly tatMs: number;
  readonly revision: number;
}

const DEFAULT_MAX_ROUNDS = 5;
const DEFAULT_CACHE_SIZE = 10_000;
/** The pause after every round lost a race: short, so a busy limiter is not left idle. */
const MAX_CONFLICT_PAUSE_MS = 50;

/** The limiter over the rate-limit bucket `kv` (openRateLimitsBucket in src/queue/topology.ts). */
export function sharedRateLimiter(kv: KV, opts: SharedRateLimiterOptions = {}): SharedRateLimiter {
  const now = opts.now ?? Date.now;
  const maxRounds = opts.maxRounds ?? DEFAULT_MAX_ROUNDS;
  const cacheSize = opts.cacheSize ?? DEFAULT_CACHE_SIZE;
  const seen = new Map<string, Seen>();

  const remember = (key: string, value: Seen): void => {
    seen.delete(key); // re-inserted last: Map order is the LRU order
    seen.set(key, value);
    if (seen.size > cacheSize) seen.delete(seen.keys().next().value!);
  };

  const read = async (key: string): Promise<Seen> => {
    const entry = await kv.get(key);
    if (entry === null) return { tatMs: 0, revision: 0 };
    // A deleted or purged key keeps a revision: kv.create writes over it.
    if (entry.operation !== 'PUT') return { tatMs: 0, revision: 0 };
    return { tatMs: decodeTat(entry.string()), revision: entry.revision };
  };

  return {
    async acquire(key, n, rate, burst = defaultBurst(rate)) {
      let state = seen.get(key);
      for (let round = 0; round < maxRounds; round++) {
        state ??= await read(key);
        const take = takeTokens(state.tatMs, now(), n, rate, burst);
        if (take.granted === 0) return { granted: 0, retryInMs: take.retryInMs };
        const value = encodeTat(take.tatMs);
        try {
          const revision = state.revision === 0 ? await kv.create(key, value) : await kv.update(key, value, state.revision);
          remember(key, { tatMs: take.tatMs, revision });
          return { granted: take.granted, retryInMs: take.retryInMs };
        } catch (err) {
          seen.delete(key);
          if (!isRevisionConflict(err)) throw err;
          state = undefined;
        }
      }
      return { granted: 0, retryInMs: Math.max(1, Math.min(MAX_CONFLICT_PAUSE_MS, Math.ceil(intervalMs(rate)))) };
    },
  };
}

/** JetStream refused the write because the key moved on since the revision it was made from. */
function isRevisionConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

/** The stored value: the TAT in ms as decimal text (readable with `nats kv get`). */
function encodeTat(tatMs: number): string {
  return String(tatMs);
}

/** An unreadable value counts as an idle limiter; the next write replaces it. */
function decodeTat(text: string): number {
  const tatMs = Number(text);
  return Number.isFinite(tatMs) && text.trim() !== '' ? tatMs : 0;
}
