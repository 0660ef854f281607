import { createHash } from 'node:crypto';

/**
 * Lanes: how one queue's stream keeps each function's invocations apart, so a worker can pull
 * them round-robin (fair scheduling) and JetStream can bound each one (a consumer's
 * `max_ack_pending` is a concurrency limit that holds across worker replicas).
 *
 * A queue's stream takes its plain subject (`faas-request`: what OpenFaaS gateways publish, and
 * asyncfn with fair_scheduling=off) and the lane subjects below it:
 *
 * - `<subject>.f.<name>.<namespace>`: one function's invocations;
 * - `<subject>.k.<name>.<namespace>.<key>`: the invocations of one function that carry one
 *   `X-Concurrency-Key` (a tenant, a customer), each key its own lane with its own limit.
 *
 * Function names and namespaces are DNS labels (`[a-z0-9-]`), so they are subject tokens as they
 * are, and `_` can join them into consumer names without ambiguity. Each lane has one durable pull
 * consumer filtered on its subject; on a work-queue stream the filters must not overlap, and they
 * do not (the queue's own consumer filters the plain subject only).
 */

/** One function's lane, or one of its keys' lanes. */
export interface LaneRef {
  readonly name: string;
  readonly namespace: string;
  /** The concurrency key's subject token (see laneKeyToken); absent for the function's own lane. */
  readonly key?: string | undefined;
}

/** Where a lane's messages are published, e.g. `faas-request.f.figlet.openfaas-fn`. */
export function laneSubject(queueSubject: string, lane: LaneRef): string {
  return lane.key === undefined ? `${queueSubject}.f.${lane.name}.${lane.namespace}` : `${queueSubject}.k.${lane.name}.${lane.namespace}.${lane.key}`;
}

/** The wildcard that covers every lane of a queue (the stream's second subject). */
export function laneWildcard(queueSubject: string): string {
  return `${queueSubject}.>`;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const READABLE_KEY = /^[A-Za-z0-9-]{1,64}$/;

/** The lane a subject of the stream names, or undefined when it names none (the plain subject, a stranger's). */
export function parseLaneSubject(queueSubject: string, subject: string): LaneRef | undefined {
  if (!subject.startsWith(`${queueSubject}.`)) return undefined;
  const tokens = subject.slice(queueSubject.length + 1).split('.');
  const [kind, name, namespace, key] = tokens;
  if (name === undefined || namespace === undefined || !DNS_LABEL.test(name) || !DNS_LABEL.test(namespace)) return undefined;
  if (kind === 'f' && tokens.length === 3) return { name, namespace };
  if (kind === 'k' && tokens.length === 4 && key !== undefined && key !== '') return { name, namespace, key };
  return undefined;
}

/** A key token's SHA-256 form, for a key that is not kept readable. */
function hashedKeyToken(token: string): string {
  return `h${createHash('sha256').update(token).digest('hex').slice(0, 32)}`;
}

/**
 * The subject token of a caller's `X-Concurrency-Key`: the key itself when it is short and plain
 * (`tenant-42`, readable in `nats stream subjects`), else `h` + a SHA-256 prefix (a key with dots,
 * spaces or unicode; 128 bits, so two keys never share a lane in practice). A readable key never
 * starts with `h` followed by 32 hex digits by accident: those are hashed too.
 */
export function laneKeyToken(key: string): string {
  if (READABLE_KEY.test(key) && !/^h[0-9a-f]{32}$/.test(key)) return key;
  return hashedKeyToken(key);
}

/** JetStream's longest consumer name (nats-server refuses a longer one: "consumer name is too long"). */
export const MAX_CONSUMER_NAME = 255;

/**
 * The durable consumer of a lane, e.g. `faas-workers_f_figlet_openfaas-fn`, or
 * `faas-workers_k_figlet_openfaas-fn_tenant-42` for a key's. A key lane whose name would pass
 * {@link MAX_CONSUMER_NAME} (a 64-character queue, function and namespace names near 63, a
 * readable 64-character key: up to 267) names its key by its hashed token instead, the one
 * laneKeyToken gives a key it hashes (a readable key is its own token), so at most 236
 * characters. Every name that fits is kept as it is: running deployments' consumers keep theirs.
 */
export function laneDurable(queueDurable: string, lane: LaneRef): string {
  if (lane.key === undefined) return `${queueDurable}_f_${lane.name}_${lane.namespace}`;
  const readable = `${queueDurable}_k_${lane.name}_${lane.namespace}_${lane.key}`;
  return readable.length <= MAX_CONSUMER_NAME ? readable : `${queueDurable}_k_${lane.name}_${lane.namespace}_${hashedKeyToken(lane.key)}`;
}

/** A lane's identity within its queue (its subject suffix), for maps and logs. */
export function laneId(lane: LaneRef): string {
  return lane.key === undefined ? `${lane.name}.${lane.namespace}` : `${lane.name}.${lane.namespace}/${lane.key}`;
}
