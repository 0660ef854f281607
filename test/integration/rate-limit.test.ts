import { setTimeout as delay } from 'node:timers/promises';
import type { KV } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import t, { type Test } from 'tap';
import { callerRateKey, functionRateKey, sharedRateLimiter, type Rate, type RateLimitKey, type SharedRateLimiter } from '../../src/flow/index.js';
import { openRateLimitsBucket, RATE_LIMITS_BUCKET } from '../../src/queue/topology.js';
import { startNatsServer } from '../helpers/nats-server.js';

/**
 * Rate limits shared through the KV bucket asyncfn_rate_limits, against a real nats-server. Each
 * "replica" is a connection of its own with its own limiter (its own cache), as two worker
 * processes would have.
 */

/** Counts the bucket operations a limiter makes, on the real KV (nothing is faked). */
interface Counted {
  kv: KV;
  readonly calls: string[];
  refused: number;
}

function counted(kv: KV): Counted {
  const c: Counted = { kv, calls: [], refused: 0 };
  const watched = new Set(['get', 'create', 'update']);
  c.kv = new Proxy(kv, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || !watched.has(prop) || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        c.calls.push(prop);
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (err) {
          c.refused += 1;
          throw err;
        }
      };
    },
  });
  return c;
}

/** A replica: its own connection to the server, the bucket opened (created by whichever comes first), a limiter. */
async function replica(t: Test, url: string, opts: { now?: () => number } = {}): Promise<{ limiter: SharedRateLimiter; ops: Counted }> {
  const nc = await connect({ servers: url });
  t.teardown(() => nc.close());
  const ops = counted(await openRateLimitsBucket(nc, { replicas: 1, storage: 'file' }));
  return { limiter: sharedRateLimiter(ops.kv, opts), ops };
}

const fn = { name: 'charge', namespace: 'openfaas-fn' };

t.test('the bucket: one value per key, and idle keys expire after the longest rate period (24 h)', async (t) => {
  const nats = await startNatsServer(t);
  const { ops } = await replica(t, nats.url);
  const status = await ops.kv.status();
  t.equal(status.bucket, RATE_LIMITS_BUCKET);
  t.equal(status.history, 1);
  t.equal(status.ttl, 24 * 3_600_000);
});

t.test('uncontended, an acquire is one round trip; a spent limiter none; the injected clock drives it', async (t) => {
  const nats = await startNatsServer(t);
  let nowMs = Date.UTC(2026, 0, 1);
  const { limiter, ops } = await replica(t, nats.url, { now: () => nowMs });
  const key = functionRateKey(fn);
  const rate: Rate = { count: 10, periodMs: 1_000 }; // T = 100 ms, burst 1

  t.same(await limiter.acquire(key, 3, rate), { granted: 1, retryInMs: 100 });
  t.same(ops.calls, ['get', 'create'], 'a key never seen: read, then create');

  ops.calls.length = 0;
  t.same(await limiter.acquire(key, 3, rate), { granted: 0, retryInMs: 100 });
  t.same(ops.calls, [], 'spent, as this replica last saw it: answered without asking the server');

  for (let i = 0; i < 5; i++) {
    nowMs += 100;
    t.same(await limiter.acquire(key, 1, rate), { granted: 1, retryInMs: 0 }, `one token per 100 ms (${i})`);
  }
  t.same(ops.calls, ['update', 'update', 'update', 'update', 'update'], 'each: one update at the remembered revision');
  t.equal(ops.refused, 0);

  const entry = await ops.kv.get(key);
  t.equal(Number(entry?.string()), nowMs + 100, 'the stored value is the TAT, ms');
});

t.test('a replica whose remembered revision is stale loses the write, re-reads and counts the other replica’s tokens', async (t) => {
  const nats = await startNatsServer(t);
  let nowMs = Date.UTC(2026, 0, 1);
  const a = await replica(t, nats.url, { now: () => nowMs });
  const b = await replica(t, nats.url, { now: () => nowMs });
  const key = callerRateKey(fn, 'tenant 7');
  const rate: Rate = { count: 4, periodMs: 1_000 }; // T = 250 ms, burst 1 by default; 2 here
  t.same(await a.limiter.acquire(key, 1, rate, 2), { granted: 1, retryInMs: 0 });
  t.same(await b.limiter.acquire(key, 5, rate, 2), { granted: 1, retryInMs: 250 }, 'b gets what a left');
  t.same(b.ops.calls, ['get', 'update']);

  nowMs += 250;
  a.ops.calls.length = 0;
  t.same(await a.limiter.acquire(key, 5, rate, 2), { granted: 1, retryInMs: 250 }, 'one token accrued in 250 ms, not the two a’s stale view shows');
  t.same(a.ops.calls, ['update', 'get', 'update'], 'refused at the stale revision, then read and written');
  t.equal(a.ops.refused, 1);
});

t.test('a conflict storm between two replicas never grants more than the limit', async (t) => {
  const nats = await startNatsServer(t);
  const replicas = [await replica(t, nats.url), await replica(t, nats.url)];
  const key = functionRateKey({ name: 'storm', namespace: 'openfaas-fn' });
  // 10 tokens at once, then one per 6 minutes: the test lasts far less, so exactly 10 exist.
  const rate: Rate = { count: 10, periodMs: 3_600_000 };
  const burst = 10;
  const racers = 10;
  const triesEach = 20;
  let granted = 0;
  let calls = 0;
  const race = async (limiter: SharedRateLimiter): Promise<void> => {
    for (let i = 0; i < triesEach; i++) {
      calls += 1;
      const grant = await limiter.acquire(key, 1, rate, burst);
      granted += grant.granted;
    }
  };
  await Promise.all(replicas.flatMap(({ limiter }) => Array.from({ length: racers }, () => race(limiter))));
  t.equal(calls, 2 * racers * triesEach);
  t.equal(granted, 10, 'exactly the burst: never more, and every token handed out');
  const refused = replicas[0]!.ops.refused + replicas[1]!.ops.refused;
  t.ok(refused > 0, `the replicas raced: ${refused} writes refused at a stale revision`);
});

t.test('20/s holds within 10 % over 10 s across 2 limiters, and each gets a fair part (20 s end to end: flow-control.test.ts)', async (t) => {
  const nats = await startNatsServer(t);
  const replicas = [await replica(t, nats.url), await replica(t, nats.url)];
  const key: RateLimitKey = functionRateKey({ name: 'rated', namespace: 'openfaas-fn' });
  const rate: Rate = { count: 20, periodMs: 1_000 };
  const burst = 2; // the default: a tenth of the count
  const durationMs = 10_000;
  const start = Date.now();
  const end = start + durationMs;

  // Each replica pulls as fast as it is allowed: asks for up to 5 (a pull batch), waits retryInMs when refused.
  const run = async (limiter: SharedRateLimiter): Promise<number> => {
    let mine = 0;
    for (let i = 0; i < 20_000 && Date.now() < end; i++) {
      const grant = await limiter.acquire(key, 5, rate);
      if (Date.now() < end) mine += grant.granted;
      if (grant.granted < 5) await delay(Math.min(grant.retryInMs, end - Date.now() + 1));
    }
    return mine;
  };
  const perReplica = await Promise.all(replicas.map(({ limiter }) => run(limiter)));
  const total = perReplica[0]! + perReplica[1]!;
  const allowed = (rate.count * durationMs) / rate.periodMs + burst; // 202
  t.ok(total <= allowed, `never above the limit: ${total} ≤ ${allowed}`);
  t.ok(total >= 0.9 * allowed, `within 10 % below it: ${total} ≥ ${0.9 * allowed}`);
  for (const [i, mine] of perReplica.entries()) t.ok(mine >= 0.25 * total, `replica ${i} got ${mine} of ${total} (≥ 25 %)`);
  t.comment(`granted ${total} in 10 s (${perReplica.join(' + ')}); refused writes ${replicas[0]!.ops.refused + replicas[1]!.ops.refused}`);
});
