/** A queue name is both a JetStream stream name and a subject token. */
export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Why a name QUEUE_NAME admits cannot name a queue, or undefined when it can. A queue `q` is the
 * stream `q` on the subjects `q` and `q.>` (its lanes), so it must overlap nothing of asyncfn's or
 * NATS's own: `asyncfn` (`asyncfn.>` holds the delayed, dead-letter, callback and batch-event
 * subjects), asyncfn's stream names (`asyncfn-delayed`, `asyncfn-dead-letters`, …: the prefix
 * `asyncfn-`), the streams of KV buckets and object stores (`KV_<bucket>`, `OBJ_<bucket>`; their
 * subjects, `$KV.` and `$O.`, are no queue names already) and `_INBOX` (`_INBOX.>`: the replies to
 * every client's requests, JetStream's API answers included).
 */
export function reservedQueueName(name: string): string | undefined {
  if (name === 'asyncfn') return 'its subjects would overlap asyncfn\'s own ("asyncfn.>")';
  if (name.startsWith('asyncfn-')) return 'the prefix "asyncfn-" names asyncfn\'s own streams';
  if (name.startsWith('KV_') || name.startsWith('OBJ_')) return 'the prefixes "KV_" and "OBJ_" name the streams of KV buckets and object stores';
  if (name === '_INBOX') return 'its subjects would overlap the replies to every NATS request ("_INBOX.>")';
  return undefined;
}

/** Whether `name` can name a queue: a stream name and subject token that overlaps nothing reserved. */
export function isQueueName(name: string): boolean {
  return QUEUE_NAME.test(name) && reservedQueueName(name) === undefined;
}
