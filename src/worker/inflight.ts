import { hostname } from 'node:os';
import type { NatsConnection, Subscription } from '@nats-io/nats-core';
import { buildInFlightReply, encodeInFlightReply, INFLIGHT_SUBJECT, parseInFlightRequest, type InFlightSource } from '../status/inflight.js';
import type { Logger } from '../telemetry/logger.js';

/** How a worker names itself in the in-flight view: its host (the pod's name in Kubernetes) and pid. */
export function workerIdentity(): string {
  return `${hostname()}:${process.pid}`;
}

export interface InFlightResponderOptions {
  readonly nc: NatsConnection;
  readonly worker: string;
  readonly sources: readonly InFlightSource[];
  readonly logger: Logger;
  /** Unix ms; default Date.now. */
  readonly now?: () => number;
}

/**
 * Answers the gateway's in-flight requests (src/status/inflight.ts) on INFLIGHT_SUBJECT. A plain
 * subscription, not a queue group: every worker answers the one request. The view is read from
 * the supervisors' registries only when a request arrives.
 */
export function serveInFlight(opts: InFlightResponderOptions): Subscription {
  const now = opts.now ?? Date.now;
  // A reply well below the server's limit: headers, and many workers' replies arriving at once.
  const maxBytes = Math.floor((opts.nc.info?.max_payload ?? 1024 * 1024) / 2);
  return opts.nc.subscribe(INFLIGHT_SUBJECT, {
    callback: (err, msg) => {
      if (err) {
        // e.g. no permission to subscribe: the worker runs on, it only stays out of the view.
        opts.logger.warn({ err, subject: INFLIGHT_SUBJECT }, 'cannot answer in-flight requests');
        return;
      }
      try {
        const reply = buildInFlightReply(opts.worker, opts.sources, parseInFlightRequest(msg.data), now());
        msg.respond(encodeInFlightReply(reply, maxBytes));
      } catch (error) {
        opts.logger.warn({ err: error }, 'could not answer an in-flight request');
      }
    },
  });
}
