import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { DemandSupervisor } from '../../actors/demand.supervisor.js';
import { decideDelayed, type SchedulingDecision } from '../../actors/delayed.policy.js';
import type { QueueConnection } from '../nats/connection.js';
import { EnvelopeHeader } from './envelope.js';
import type { DeadLetterMeta, RawMessage } from './dead-letter.js';
import { describeError } from '../errors.js';
import { DELAYED_STREAM, ensureSchedulerConsumer, schedulerDurable, type QueueSpec } from './topology.js';
import { fetchSource } from './pull.js';
import { parseLaneSubject } from './lanes.js';

/**
 * Delayed invocations (X-Delay-Seconds, X-Not-Before) wait in a stream of their own, so they hold
 * no worker slot and do not count as backlog. A scheduler consumer per queue naks each one with
 * the time it still has to wait (the wait lives in JetStream and survives any restart) and, once
 * it is due, moves it onto the queue's subject: from then on it is an ordinary invocation, whose
 * first delivery is its first attempt. The stream and its consumers are made in topology.ts.
 */

export type { SchedulingDecision } from '../../actors/delayed.policy.js';

/** The scheduler's policy read from the message's Asyncfn-Not-Before header (unreadable = unknown = due). */
export function schedulingDecision(notBeforeHeader: string | undefined, nowMs: number): SchedulingDecision {
  const notBeforeMs = Number(notBeforeHeader);
  const known = notBeforeHeader !== undefined && notBeforeHeader !== '' && Number.isSafeInteger(notBeforeMs);
  return decideDelayed(known ? notBeforeMs : undefined, nowMs);
}

/** The message's headers for the queue: everything but JetStream's own, plus a stable dedup id. */
function dueHeaders(msg: JsMsg): MsgHdrs {
  const h = natsHeaders();
  for (const [key, values] of msg.headers ?? []) {
    if (key.toLowerCase().startsWith('nats-')) continue;
    for (const value of values) h.append(key, value);
  }
  // A scheduler that dies between the publish and the ack republishes: the stream drops the copy.
  h.set(EnvelopeHeader.msgId, `asyncfn-due-${DELAYED_STREAM}-${msg.seq}`);
  return h;
}

/**
 * Where a due invocation goes: the lane the gateway chose for it (its Asyncfn-Due-Subject), if that
 * is one of this queue's lanes; otherwise the queue's plain subject (older messages, and a header
 * naming anything else, which must not redirect an invocation out of its queue).
 */
export function dueSubject(header: string | undefined, queueSubject: string): string {
  return header !== undefined && header !== '' && parseLaneSubject(queueSubject, header) !== undefined ? header : queueSubject;
}

export interface DelayedScheduler {
  /**
   * Stops pulling and waits up to `graceMs` (default 10 s) for the moves under way; one cut short
   * is redelivered after ack_wait and its dedup id makes the second move a no-op.
   */
  close(graceMs?: number): Promise<void>;
}

/** Delayed invocations one scheduler handles at once (per queue, per worker). */
export const DELAYED_CONCURRENCY = 64;

export interface SchedulerDeps {
  readonly queue: QueueConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly spec: QueueSpec;
  readonly logger: Logger;
  readonly now?: () => number;
  /** How long to wait before trying again when the move to the queue failed, ms; default 1000. */
  readonly retryMs?: number;
  /** Messages handled at once, and so the most it holds unacked; default DELAYED_CONCURRENCY. */
  readonly concurrency?: number;
  /** How long one pull request waits for messages, ms; default 5000. */
  readonly expiresMs?: number;
  /** Stores a message that can never be moved (its headers cannot be read) as a poison dead letter. */
  readonly deadLetter: (original: RawMessage, meta: DeadLetterMeta) => Promise<void>;
}

/**
 * Starts moving due invocations of one queue from the delayed stream onto the queue. It runs on
 * the demand supervisor: it holds no more messages than it is handling (no client buffer), and
 * each is decided by the pure `decideDelayed` policy.
 */
export async function startDelayedScheduler(deps: SchedulerDeps): Promise<DelayedScheduler> {
  const { js, jsm, spec, logger } = deps;
  const now = deps.now ?? Date.now;
  await ensureSchedulerConsumer(jsm, spec);
  const consumer = await js.consumers.get(DELAYED_STREAM, schedulerDurable(spec));
  const move = async (msg: JsMsg): Promise<void> => {
    try {
      await js.publish(dueSubject(msg.headers?.get(EnvelopeHeader.dueSubject), spec.subject), msg.data, { headers: dueHeaders(msg) });
      await msg.ackAck();
    } catch (err) {
      // Not moved, or moved but the ack was lost (the dedup id makes the next move a no-op).
      logger.warn({ err, queue: spec.stream, callId: msg.headers?.get(EnvelopeHeader.callId) }, 'could not move a due invocation onto its queue; retrying');
      msg.nak(deps.retryMs ?? 1_000);
    }
  };
  /** As the queue's own pull does (src/queue/pull.ts): poison, kept without its unreadable headers, then acked. */
  const deadLetterUnreadable = async (msg: JsMsg, err: unknown): Promise<void> => {
    const error = `unreadable headers: ${describeError(err)}`;
    try {
      await deps.deadLetter({ headers: undefined, data: msg.data }, { reason: 'poison', queue: spec.stream, attempts: msg.info.deliveryCount, error, atMs: now() });
      await msg.ackAck();
    } catch (failure) {
      logger.warn({ err: failure, queue: spec.stream, seq: msg.seq }, 'could not dead-letter a delayed message whose headers cannot be read; retrying');
      msg.nak(deps.retryMs ?? 1_000);
    }
  };
  const supervisor = new DemandSupervisor<JsMsg>({
    concurrency: deps.concurrency ?? DELAYED_CONCURRENCY,
    pull: fetchSource(deps.queue, consumer, { expiresMs: deps.expiresMs ?? 5_000 }),
    handle: (msg) => {
      let notBefore: string | undefined;
      try {
        notBefore = msg.headers?.get(EnvelopeHeader.notBefore);
      } catch (err) {
        // A header block nats.js cannot read (a foreign publisher's): it never will, so it is no invocation.
        return deadLetterUnreadable(msg, err);
      }
      const decision = schedulingDecision(notBefore, now());
      if (decision.due) return move(msg);
      // Not due: back to JetStream for the time it has left; it held its slot only for this nak.
      msg.nak(decision.waitMs);
      return undefined;
    },
    events: {
      pullFailed: (err) => logger.warn({ err, queue: spec.stream }, 'the delayed-invocation scheduler could not pull; retrying'),
      handleFailed: (msg, err) =>
        logger.error({ err, queue: spec.stream, seq: msg.seq }, 'the delayed-invocation scheduler failed on a message; JetStream redelivers it'),
    },
  });
  supervisor.start();
  return {
    async close(graceMs = 10_000) {
      await supervisor.drain(graceMs);
    },
  };
}
