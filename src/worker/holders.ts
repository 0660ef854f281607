import { errors, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import type { Invocation } from '../queue/envelope.js';
import type { Logger } from '../telemetry/logger.js';

/*
 * "Do you still run this invocation?", asked by a worker that got a redelivery of an invocation
 * whose `running` record names another worker. JetStream redelivers a message whose ack deadline
 * passed, and the worker running it may be alive all the same: starved of CPU past ack_wait (a
 * burst of thousands of long jobs ending at once), or its extension read late by a busy server.
 * Without asking, the second worker would call the function again while the first still runs it.
 *
 * Core NATS request/reply on a subject of the holder's own, so the question reaches one process:
 * no heartbeats, no clocks compared, nothing written, and nothing paid unless a redelivery finds
 * another worker's `running` record. A holder that is gone is known at once: the server answers
 * "no responders" for a subject nobody subscribes to.
 */

/** The prefix of every worker's subject; the rest is the worker's identity, base64url (subject-safe). */
export const HOLDS_SUBJECT_PREFIX = 'asyncfn.control.holds';

const HELD = 'held';
const FREE = 'free';

/** The subject `worker` (hostname:pid, src/worker/inflight.ts) answers on. */
export function holdsSubject(worker: string): string {
  return `${HOLDS_SUBJECT_PREFIX}.${Buffer.from(worker, 'utf8').toString('base64url')}`;
}

/** Whether a queue of this worker runs the invocation now; it then extends its ack deadline (QueueSupervisor.holds). */
export type Holds = (callId: string, enqueuedAtMs: number) => boolean;

interface HoldsRequest {
  readonly callId: string;
  readonly enqueuedAtMs: number;
}

function parseRequest(data: Uint8Array): HoldsRequest | undefined {
  try {
    const value = JSON.parse(Buffer.from(data).toString('utf8')) as Partial<HoldsRequest> | null;
    if (typeof value?.callId !== 'string' || typeof value.enqueuedAtMs !== 'number') return undefined;
    return { callId: value.callId, enqueuedAtMs: value.enqueuedAtMs };
  } catch {
    return undefined;
  }
}

export interface HoldsResponderOptions {
  readonly nc: NatsConnection;
  readonly worker: string;
  readonly holds: Holds;
  readonly logger: Logger;
}

/** Answers other workers' questions about the invocations this worker runs: `held` or `free`. */
export function serveHolds(opts: HoldsResponderOptions): Subscription {
  const subject = holdsSubject(opts.worker);
  return opts.nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err) {
        // e.g. no permission to subscribe: other workers then run its redeliveries, as before.
        opts.logger.warn({ err, subject }, 'cannot answer whether this worker still runs an invocation');
        return;
      }
      const request = parseRequest(msg.data);
      msg.respond(request !== undefined && opts.holds(request.callId, request.enqueuedAtMs) ? HELD : FREE);
    },
  });
}

export interface AskHolderOptions {
  readonly nc: NatsConnection;
  /** How long to wait for the answer, ms: a holder that is connected but cannot answer in time is taken to hold it. */
  readonly timeoutMs: number;
  readonly logger: Logger;
}

/**
 * Asks `worker` whether it still runs `invocation`. True when it answers `held`, or is connected
 * and does not answer in time (alive but starved: running the function again here is the one
 * outcome to avoid; a process that stays stuck is disconnected by the server's pings, and then
 * nobody answers). False when it answers `free`, or nobody subscribes to its subject (it died, or
 * restarted under the same name and runs nothing of the kind), or the question cannot be sent.
 */
export async function askHolder(opts: AskHolderOptions, worker: string, invocation: Pick<Invocation, 'callId' | 'enqueuedAtMs'>): Promise<boolean> {
  const body = JSON.stringify({ callId: invocation.callId, enqueuedAtMs: invocation.enqueuedAtMs });
  try {
    const reply = await opts.nc.request(holdsSubject(worker), body, { timeout: opts.timeoutMs });
    return reply.string() === HELD;
  } catch (err) {
    if (err instanceof errors.TimeoutError) return true;
    if (err instanceof errors.RequestError && err.isNoResponders()) return false;
    opts.logger.warn({ err, callId: invocation.callId, worker }, 'could not ask the worker named by a running record; the redelivery runs');
    return false;
  }
}
