import type { InFlightInvocation } from '../../actors/queue.supervisor.js';
import type { InvocationProgress } from './records.js';

/*
 * The in-flight view (issue 18): which invocations run now, on which worker, in which state of
 * their machine. Scatter-gather over core NATS request/reply: the gateway publishes one request on
 * INFLIGHT_SUBJECT and every worker (a plain subscription, not a queue group) answers with a
 * snapshot read from its supervisors' in-flight registries at that moment. Nobody asking costs
 * nothing: no periodic publish, no per-invocation write.
 */

/** The control subject every worker answers the in-flight request on. */
export const INFLIGHT_SUBJECT = 'asyncfn.control.inflight';

/** Entries per reply unless the request asks for another number. */
export const INFLIGHT_DEFAULT_LIMIT = 500;
/** Most entries a request may ask for per worker: a reply stays far below max_payload. */
export const INFLIGHT_MAX_LIMIT = 2000;

/** What the gateway asks (the request's JSON body); every field optional. */
export interface InFlightRequest {
  /** Only invocations of this function: `name`, or `name.namespace`. */
  readonly function?: string | undefined;
  /** Most entries per worker's reply, 1…INFLIGHT_MAX_LIMIT; default INFLIGHT_DEFAULT_LIMIT. */
  readonly limit?: number | undefined;
}

/** One in-flight invocation in a reply. */
export interface InFlightEntry {
  readonly callId: string;
  readonly function: string;
  readonly namespace: string;
  readonly queue: string;
  /** The lane it was pulled from, absent for the queue's own consumer. */
  readonly lane?: string;
  /** Its machine's state (`invoking`, `retrying`, `callback`, …). */
  readonly state: string;
  readonly attempt: number;
  /** Delivery time on the worker, Unix ms. */
  readonly startedAtMs: number;
  /** Time since delivery on the worker's clock when it answered, ms (no clock skew between machines). */
  readonly elapsedMs: number;
  /**
   * The latest progress its function reported, from its record: added by the gateway when asked
   * (`progress=true`, src/gateway/inflight.ts); workers never send it.
   */
  readonly progress?: InvocationProgress;
}

/** One queue a worker serves. */
export interface InFlightQueue {
  readonly queue: string;
  /** The worker's max_inflight for it. */
  readonly maxInflight: number;
  /** Invocations in flight on it now, whatever the request's filter. */
  readonly inFlight: number;
}

/** One worker's answer. */
export interface WorkerInFlight {
  /** The worker's identity (hostname:pid). */
  readonly worker: string;
  /** When it answered, Unix ms on its clock. */
  readonly at: number;
  readonly queues: readonly InFlightQueue[];
  /** Invocations matching the filter, all of them, whether listed or not. */
  readonly total: number;
  /** `total` by machine state. */
  readonly byState: Readonly<Record<string, number>>;
  /** The oldest matching invocations first, at most the request's limit. */
  readonly invocations: readonly InFlightEntry[];
  /** true when `invocations` lists fewer than `total`. */
  readonly truncated: boolean;
}

/** What a worker reads its view from: each queue it serves and that queue's registry. */
export interface InFlightSource {
  readonly queue: string;
  readonly maxInflight: number;
  inFlight(): Iterable<InFlightInvocation>;
}

/** The limit a request asks for, within 1…INFLIGHT_MAX_LIMIT. */
export function limitOf(request: InFlightRequest): number {
  const { limit } = request;
  if (limit === undefined || !Number.isFinite(limit)) return INFLIGHT_DEFAULT_LIMIT;
  return Math.min(INFLIGHT_MAX_LIMIT, Math.max(1, Math.floor(limit)));
}

/** Whether `invocation` is of `fn` (`name`, or `name.namespace`). */
function matchesFunction(invocation: InFlightInvocation, fn: string | undefined): boolean {
  if (fn === undefined) return true;
  return fn.includes('.') ? `${invocation.functionName}.${invocation.namespace}` === fn : invocation.functionName === fn;
}

/**
 * One worker's reply (pure): counts every invocation by state, lists the oldest `limit` of those
 * matching the filter, and says when the list is cut.
 */
export function buildInFlightReply(worker: string, sources: readonly InFlightSource[], request: InFlightRequest, nowMs: number): WorkerInFlight {
  const queues: InFlightQueue[] = [];
  const matching: InFlightInvocation[] = [];
  const byState: Record<string, number> = {};
  for (const source of sources) {
    let inFlight = 0;
    for (const invocation of source.inFlight()) {
      inFlight += 1;
      if (!matchesFunction(invocation, request.function)) continue;
      matching.push(invocation);
      byState[invocation.state] = (byState[invocation.state] ?? 0) + 1;
    }
    queues.push({ queue: source.queue, maxInflight: source.maxInflight, inFlight });
  }
  const listed = matching.sort((a, b) => a.startedAtMs - b.startedAtMs).slice(0, limitOf(request));
  return {
    worker,
    at: nowMs,
    queues,
    total: matching.length,
    byState,
    invocations: listed.map((i) => entryOf(i, nowMs)),
    truncated: listed.length < matching.length,
  };
}

function entryOf(i: InFlightInvocation, nowMs: number): InFlightEntry {
  return {
    callId: i.callId,
    function: i.functionName,
    namespace: i.namespace,
    queue: i.queue,
    ...(i.lane === '' ? {} : { lane: i.lane }),
    state: i.state,
    attempt: i.attempt,
    startedAtMs: i.startedAtMs,
    elapsedMs: Math.max(0, nowMs - i.startedAtMs),
  };
}

const encoder = new TextEncoder();

/**
 * A reply encoded in at most `maxBytes` (a fraction of the server's max_payload): entries are
 * dropped, half at a time, until it fits (long caller-chosen call ids can make 2000 entries large).
 * Counts stay whole; `truncated` says entries are missing.
 */
export function encodeInFlightReply(reply: WorkerInFlight, maxBytes: number): Uint8Array {
  let current = reply;
  let bytes = encoder.encode(JSON.stringify(current));
  // At most log2(INFLIGHT_MAX_LIMIT) + 1 rounds.
  while (bytes.length > maxBytes && current.invocations.length > 0) {
    const invocations = current.invocations.slice(0, Math.floor(current.invocations.length / 2));
    current = { ...current, invocations, truncated: true };
    bytes = encoder.encode(JSON.stringify(current));
  }
  return bytes;
}

/** A request body as a worker reads it: what is not understood is left at its default. */
export function parseInFlightRequest(data: Uint8Array): InFlightRequest {
  if (data.length === 0) return {};
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as unknown;
    if (typeof value !== 'object' || value === null) return {};
    const { function: fn, limit } = value as Record<string, unknown>;
    return {
      function: typeof fn === 'string' && fn !== '' ? fn : undefined,
      limit: typeof limit === 'number' ? limit : undefined,
    };
  } catch {
    return {};
  }
}

/** A worker's reply as the gateway reads it; undefined when it is not one (another program on the subject). */
export function parseWorkerInFlight(data: Uint8Array): WorkerInFlight | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as Partial<WorkerInFlight> | null;
    if (typeof value?.worker !== 'string' || !Array.isArray(value.invocations) || typeof value.total !== 'number') return undefined;
    return value as WorkerInFlight;
  } catch {
    return undefined;
  }
}
