import type { Msg, NatsConnection } from '@nats-io/nats-core';

/*
 * Waiting for one key of a KV bucket to hold a value, without a JetStream consumer per waiter.
 *
 * A KV write is a publish on the key's subject, `$KV.<bucket>.<key>`; a core NATS subscription
 * there sees every write as it is made, and costs the server nothing once unsubscribed (a
 * `kv.watch` is an ordered consumer, which nats.js leaves on the server for 5 minutes after
 * `stop()`: one per long-poll). The subscription is made before the key is read, on the same
 * connection, so a write the read does not show reaches the subscription instead.
 */

/** A subscription to the writes of one key; `closed` settles when it ends (unsubscribed, or the connection closed). */
export interface KeySubscription {
  stop(): void;
  readonly closed: Promise<void | Error>;
}

/**
 * Subscribes to the writes of `key`: `onWrite` gets each written value, undefined for a delete or
 * purge (or an empty value).
 */
export type SubscribeToKey = (key: string, onWrite: (value: Uint8Array | undefined) => void) => KeySubscription;

/** The KV operation header nats.js writes on deletes and purges. */
const KV_OPERATION = 'KV-Operation';

/** Pure: the value a write on a key's subject carries; undefined for a delete, a purge or an empty value. */
export function writtenValue(msg: Pick<Msg, 'data' | 'headers'>): Uint8Array | undefined {
  const op = msg.headers?.get(KV_OPERATION);
  return op === 'DEL' || op === 'PURGE' || msg.data.length === 0 ? undefined : msg.data;
}

/** Core NATS subscriptions on the keys of `bucket` over `nc`. `key` must be a valid KV key (no wildcard). */
export function keySubscriber(nc: Pick<NatsConnection, 'subscribe'>, bucket: string): SubscribeToKey {
  return (key, onWrite) => {
    const sub = nc.subscribe(`$KV.${bucket}.${key}`, {
      callback: (err, msg) => {
        if (!err) onWrite(writtenValue(msg));
      },
    });
    return { stop: () => sub.unsubscribe(), closed: sub.closed };
  };
}

/**
 * The key is read once more this long after the wait began: a write routed to the stream before
 * the subscription was made, but stored only after the first read, is seen by neither; JetStream
 * stores a message within milliseconds of routing it.
 */
const RECHECK_AFTER_MS = 1_000;

/** Longest timer Node keeps (about 24.8 days); a longer timeout waits without a timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One key to wait on: how to read it, follow its writes, decode them, and when to stop. */
export interface KeyWait<T> {
  readonly key: string;
  /** The key's value as stored (undefined: none). */
  read(): Promise<T | undefined>;
  readonly subscribe: SubscribeToKey;
  /** A written value (undefined for a delete) as a T; undefined when it holds none. */
  decode(value: Uint8Array | undefined): T | undefined;
  /** true when `value` ends the wait. */
  isDone(value: T | undefined): boolean;
}

/**
 * Resolves with the key's value once `isDone` accepts it (from the read or from a write, as soon
 * as it is published), or, after `timeoutMs` (> 0, ms; `Infinity` waits without a timer), with
 * the value read again then: what is stored, not what a write that JetStream refused (a create or
 * a compare-and-set that lost) said. Aborting `signal` rejects with its reason. The subscription
 * is stopped on every path; the connection closing first rejects.
 */
export function waitForKey<T>(wait: KeyWait<T>, timeoutMs: number, signal?: AbortSignal): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let recheck: NodeJS.Timeout | undefined;
    const finish = (settle: () => void): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      if (recheck) clearTimeout(recheck);
      signal?.removeEventListener('abort', onAbort);
      subscription.stop();
      settle();
    };
    const onAbort = (): void => finish(() => reject(signal!.reason));
    const settleWith = (read: Promise<T | undefined>): void => {
      read.then(
        (value) => finish(() => resolve(value)),
        (err: unknown) => finish(() => reject(err)),
      );
    };

    const subscription = wait.subscribe(wait.key, (written) => {
      if (done) return;
      let value: T | undefined;
      try {
        value = wait.decode(written);
      } catch {
        return; // a write that holds no value of ours: the read at the end tells what is stored
      }
      if (wait.isDone(value)) finish(() => resolve(value));
    });
    subscription.closed.then(
      (err) => finish(() => reject(err instanceof Error ? err : new Error(`the subscription to key "${wait.key}" ended before the wait did`))),
      (err: unknown) => finish(() => reject(err)),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    if (Number.isFinite(timeoutMs) && timeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => settleWith(wait.read()), timeoutMs);

    const readNow = (): void => {
      wait.read().then(
        (value) => {
          if (wait.isDone(value)) finish(() => resolve(value));
        },
        (err: unknown) => finish(() => reject(err)),
      );
    };
    readNow();
    if (!(timeoutMs <= RECHECK_AFTER_MS)) recheck = setTimeout(() => !done && readNow(), RECHECK_AFTER_MS);
  });
}
