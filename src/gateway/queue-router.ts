import type { JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { parseDurationMs } from '../config/duration.js';
import type { Config } from '../config/index.js';
import { createError } from '../errors.js';
import type { ResolvedFunction } from '../functions/index.js';
import { isQueueName, QUEUE_ANNOTATION } from '../queue/queues.js';
import { laneKeyToken, laneSubject } from '../queue/lanes.js';
import { ensureStream, queueSpecFor, streamHasLanes } from '../queue/topology.js';

/** Per-function max event age (asyncfn's own annotation; `max_event_age` is the default). */
export const MAX_EVENT_AGE_ANNOTATION = 'com.asyncfn.max_event_age';

/** A function's annotation cannot be used; the operator must fix the function. */
export class BadAnnotationError extends createError('ASYNCFN_ERR_BAD_ANNOTATION') {}

export interface Route {
  readonly queue: string;
  /** Where the invocation is published: its lane (see src/queue/lanes.ts) or the queue's plain subject. */
  readonly subject: string;
  /** The queue's plain subject (a delayed invocation's scheduler is filtered on it). */
  readonly queueSubject: string;
  /** Unix ms after which the invocation expires unrun; undefined = never. */
  readonly expiresAtMs?: number | undefined;
}

/**
 * Chooses the queue of each invocation from its function's `com.openfaas.queue` annotation and
 * makes sure that queue's stream exists (once per queue per gateway, on its first invocation:
 * provisionGateway makes only the default queue's).
 */
export function createQueueRouter(config: Config, jsm: JetStreamManager, logger: Logger) {
  /** What every invocation of a provisioned queue is routed by, worked out once per queue. */
  interface QueueTarget {
    /** The queue's plain subject (a delayed invocation's scheduler is filtered on it). */
    readonly subject: string;
    /** Whether its stream captures the function lanes (see src/queue/lanes.ts). */
    readonly lanes: boolean;
  }
  const provisioned = new Map<string, Promise<QueueTarget>>();
  /** The queues whose streams are known to exist: routed without waiting on anything. */
  const known = new Map<string, QueueTarget>();
  const provision = (queue: string): Promise<QueueTarget> => {
    let ready = provisioned.get(queue);
    if (!ready) {
      const spec = queueSpecFor(config, queue);
      ready = ensureStream(jsm, spec, logger).then((stream) => {
        const target = { subject: spec.subject, lanes: streamHasLanes(stream, spec) };
        known.set(queue, target);
        return target;
      });
      // A failure is not cached: the next request tries again.
      ready.catch(() => provisioned.delete(queue));
      provisioned.set(queue, ready);
    }
    return ready;
  };
  /** The function's queue and max event age, from its annotations (or the config). */
  const queueOf = (fn: ResolvedFunction): { queue: string; maxAgeMs: number } => {
    const queue = fn.annotations[QUEUE_ANNOTATION] ?? config.queue.stream;
    if (!isQueueName(queue)) throw new BadAnnotationError(fn.name, QUEUE_ANNOTATION, queue);
    const ageText = fn.annotations[MAX_EVENT_AGE_ANNOTATION];
    const maxAgeMs = ageText === undefined ? config.deadLetters.maxEventAgeMs : parseDurationMs(ageText);
    if (maxAgeMs === undefined) throw new BadAnnotationError(fn.name, MAX_EVENT_AGE_ANNOTATION, ageText ?? '');
    return { queue, maxAgeMs };
  };
  const routeTo = (fn: ResolvedFunction, queue: string, maxAgeMs: number, target: QueueTarget, enqueuedAtMs: number, concurrencyKey: string | undefined): Route => {
    const { subject: queueSubject, lanes } = target;
    let subject = queueSubject;
    if (lanes && concurrencyKey !== undefined) subject = laneSubject(queueSubject, { name: fn.name, namespace: fn.namespace, key: laneKeyToken(concurrencyKey) });
    else if (lanes && config.gateway.fairScheduling) subject = laneSubject(queueSubject, { name: fn.name, namespace: fn.namespace });
    return { queue, subject, queueSubject, expiresAtMs: maxAgeMs > 0 ? enqueuedAtMs + maxAgeMs : undefined };
  };
  return {
    /** `concurrencyKey`: the caller's X-Concurrency-Key, which gets its own lane. */
    async route(fn: ResolvedFunction, enqueuedAtMs: number, concurrencyKey?: string): Promise<Route> {
      const { queue, maxAgeMs } = queueOf(fn);
      return routeTo(fn, queue, maxAgeMs, await provision(queue), enqueuedAtMs, concurrencyKey);
    },
    /**
     * The route at once when the function's queue is provisioned already (every request after the
     * first): no promise and no deadline timer for a step that waits on nothing. Undefined
     * otherwise: `route` then provisions it. Throws as `route` rejects on a bad annotation.
     */
    routeNow(fn: ResolvedFunction, enqueuedAtMs: number, concurrencyKey?: string): Route | undefined {
      const { queue, maxAgeMs } = queueOf(fn);
      const target = known.get(queue);
      return target && routeTo(fn, queue, maxAgeMs, target, enqueuedAtMs, concurrencyKey);
    },
  };
}

export type QueueRouter = ReturnType<typeof createQueueRouter>;
