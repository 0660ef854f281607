import type { Consumer, JsMsg } from '@nats-io/jetstream';
import { decideCallback, planDelivery, type CallbackDecision, type CallbackRetryPolicy } from '../../actors/callback.policy.js';
import type { CallbackRequest } from '../../actors/invocation.types.js';
import { DemandSupervisor } from '../../actors/demand.supervisor.js';
import type { QueueConnection } from '../nats/connection.js';
import { fetchSource } from '../queue/pull.js';
import { describeError } from '../errors.js';
import { traceIdOf } from '../telemetry/spans.js';
import type { PayloadStore } from '../queue/payload-store.js';
import { CALLBACK_SUBJECT_PREFIX } from '../queue/topology.js';
import { decodeCallback, readStoredResult, StoredResultLostError, type StoredCallback } from './stored.js';

/*
 * Durable callback delivery: a result whose callback failed is stored in its own stream (made in
 * src/queue/topology.ts) and delivered from there with its own back-off, so a receiver that is
 * down for an hour gets the result later, and the function never runs again for it. The stored
 * message's format and the hand-off are in stored.ts.
 */

export interface CallbackRetrierDeps {
  readonly consumer: Consumer;
  readonly policy: CallbackRetryPolicy;
  /** Callbacks delivered at once by this worker. */
  readonly concurrency: number;
  /** One delivery attempt; rejects with the receiver's status (if any) on failure. */
  readonly deliver: (req: CallbackRequest) => Promise<void>;
  readonly statusOf: (error: unknown) => number | undefined;
  /**
   * True for a failure no retry can fix (a callback target the SSRF guard refuses): the callback
   * is dead-lettered at once instead of waiting out every attempt. Default: none is.
   */
  readonly isPermanent?: (error: unknown) => boolean;
  /**
   * Stores a callback in the dead letters (PubAck awaited): one that failed every attempt
   * (`callbackFailed`), or a message in the callback stream that is no stored callback (`poison`).
   */
  readonly deadLetter: (msg: JsMsg, queue: string, attempts: number, error: string, reason: 'callbackFailed' | 'poison') => Promise<void>;
  readonly onEvent: (event: CallbackEvent) => void;
  /** The clock for a callback's age (`callback_max_age`), unix ms. Default Date.now. */
  readonly nowMs?: () => number;
  /** A pull request failed (the retrier asks again after a second). Default: ignored. */
  readonly onPullFailed?: (error: unknown) => void;
  /** How long one pull request waits for callbacks, ms; default 5000. */
  readonly expiresMs?: number;
  /** Where results too large for a message are kept (handOffCallback); deleted once delivered. */
  readonly payloads?: PayloadStore | undefined;
}

export interface CallbackEvent {
  readonly callId: string;
  /** The invocation's function; absent when the message could not be decoded. */
  readonly function?: string;
  /** The trace of the invocation (its caller's traceparent), as every line about it carries; absent without one. */
  readonly traceId?: string;
  /** The invocation's queue; "" when the message could not be decoded. */
  readonly queue: string;
  readonly attempt: number;
  readonly result: 'delivered' | 'retry' | 'deadLettered' | 'failed';
  /** With `deadLettered`: why. */
  readonly reason?: 'callbackFailed' | 'poison';
  readonly delayMs?: number;
  readonly error?: string;
}

/** The dead letter's error line: the policy's reason, then the last attempt's error when it adds something. */
function deadLetterError(decision: Extract<CallbackDecision, { action: 'deadLetter' }>, lastError: string): string {
  return decision.permanent || lastError === '' ? decision.reason : `${decision.reason}; last error: ${lastError}`;
}

/** The stored callback's request with its result, read from the payload bucket when the message carries a claim check. */
async function withResult(stored: StoredCallback, payloads: PayloadStore | undefined): Promise<CallbackRequest> {
  const { request, resultRef } = stored;
  if (resultRef === undefined) return request;
  if (payloads === undefined) throw new StoredResultLostError(`the result is in the payload bucket (object ${resultRef.name}) and this worker has none`);
  return { ...request, outcome: { ...request.outcome, body: await readStoredResult(payloads, resultRef) } };
}

/** The stored callback, or why the message is none (published by something else): then it is poison. */
function decodeStored(msg: JsMsg): { stored: StoredCallback } | { poison: string } {
  try {
    return { stored: decodeCallback(msg.headers, msg.data) };
  } catch (err) {
    return { poison: describeError(err) };
  }
}

/** A running callback retrier. */
export interface CallbackRetrier {
  /**
   * Stops pulling and waits up to `graceMs` (default: until they end, each bounded by the
   * callback timeout) for the deliveries under way; one cut short is redelivered after ack_wait.
   */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Pulls pending callbacks and delivers them, at most `concurrency` at once, on the demand
 * supervisor: it never holds a stored callback it is not delivering. Each delivery of the stored
 * message is one more attempt, decided by the pure `decideCallback` policy; a failure naks with
 * the back-off delay, so the wait lives in JetStream and survives any worker's death.
 */
export function startCallbackRetrier(deps: CallbackRetrierDeps, queue: QueueConnection): CallbackRetrier {
  const nowMs = deps.nowMs ?? Date.now;
  const handle = async (msg: JsMsg): Promise<void> => {
    /** The fields of every event about a decoded callback: which invocation, of which function, in which trace. */
    let about: Pick<CallbackEvent, 'callId' | 'function' | 'traceId'> = { callId: '' };
    let queueName = '';
    // The worker's direct attempt was attempt 1 (planDelivery numbers the rest); until decoded, the n-th delivery is taken as attempt n + 1.
    let attempt = msg.info.deliveryCount + 1;
    try {
      const decoded = decodeStored(msg);
      if ('poison' in decoded) {
        await deadLetterPoison(msg, decoded.poison);
        return;
      }
      const { stored } = decoded;
      const { queue, directStatus, resultRef } = stored;
      const { invocation } = stored.request;
      about = { callId: invocation.callId, function: invocation.functionName, traceId: traceIdOf(invocation.traceparent) };
      queueName = queue;
      // Age counts from when the stream stored the hand-off (or its replay), on the server's clock.
      const ageMs = (): number => Math.max(0, Math.round(nowMs() - msg.info.timestampNanos / 1e6));
      const deadLetter = async (attempts: number, error: string): Promise<void> => {
        await deps.deadLetter(msg, queue, attempts, error, 'callbackFailed');
        await msg.ackAck();
        deps.onEvent({ ...about, queue, attempt: attempts, result: 'deadLettered', reason: 'callbackFailed', error });
      };
      // The direct attempt got an answer: it ends it (a permanent status, or it was the last
      // attempt), or its back-off is waited out in JetStream before the next POST. One that got no
      // answer always gets a durable attempt at once, with the full callback_timeout, however short
      // its own budget was.
      const plan = planDelivery({ deliveryCount: msg.info.deliveryCount, directStatus, ageMs: ageMs() }, deps.policy);
      if (plan.action === 'deadLetter') {
        await deadLetter(1, deadLetterError(plan, `callback failed: receiver answered ${directStatus}`));
        return;
      }
      if (plan.action === 'wait') {
        // Not an attempt: the direct one's failure was counted (handedOff) by the worker that made it.
        msg.nak(plan.delayMs);
        return;
      }
      attempt = plan.attempt;
      let request: CallbackRequest;
      try {
        request = await withResult(stored, deps.payloads);
      } catch (err) {
        // Gone or damaged (its age limit passed): no attempt can post it. Unreachable: redelivered after ack_wait.
        if (!(err instanceof StoredResultLostError)) throw err;
        await deadLetter(attempt - 1, describeError(err));
        return;
      }
      let status: number | undefined;
      let error = '';
      let permanent = false;
      try {
        await deps.deliver(request);
        status = 200;
      } catch (err) {
        status = deps.statusOf(err);
        error = describeError(err);
        permanent = deps.isPermanent?.(err) ?? false;
      }
      if (permanent) {
        await deadLetter(attempt, error);
        return;
      }
      const decision = decideCallback({ status, attempt, ageMs: ageMs() }, deps.policy);
      switch (decision.action) {
        case 'delivered':
          await msg.ackAck();
          deps.onEvent({ ...about, queue, attempt, result: 'delivered' });
          // A dead letter keeps its result for a replay; a delivered one needs it no more (else the bucket's age limit removes it).
          if (resultRef !== undefined) void deps.payloads?.delete(resultRef.name).catch(() => false);
          break;
        case 'retry':
          msg.nak(decision.delayMs);
          deps.onEvent({ ...about, queue, attempt, result: 'retry', delayMs: decision.delayMs, error });
          break;
        case 'deadLetter':
          await deadLetter(attempt, deadLetterError(decision, error));
          break;
      }
    } catch (err) {
      // A failed settle (or a poison message's dead letter not stored): leave it unacked; JetStream redelivers after ack_wait.
      deps.onEvent({ ...about, queue: queueName, attempt, result: 'failed', error: describeError(err) });
    }
  };

  /**
   * A message no retrier can read is redelivered forever (the consumer has no max_deliver): it
   * goes to the dead letters as `poison`, as an undecodable invocation does, and is acked.
   */
  const deadLetterPoison = async (msg: JsMsg, why: string): Promise<void> => {
    const error = `undecodable callback: ${why}`;
    const queue = msg.subject.startsWith(CALLBACK_SUBJECT_PREFIX) ? msg.subject.slice(CALLBACK_SUBJECT_PREFIX.length) : '';
    await deps.deadLetter(msg, queue, msg.info.deliveryCount, error, 'poison');
    await msg.ackAck();
    deps.onEvent({ callId: '', queue, attempt: msg.info.deliveryCount, result: 'deadLettered', reason: 'poison', error });
  };

  const supervisor = new DemandSupervisor<JsMsg>({
    concurrency: deps.concurrency,
    pull: fetchSource(queue, deps.consumer, { expiresMs: deps.expiresMs ?? 5_000 }),
    handle,
    events: {
      pullFailed: (err) => deps.onPullFailed?.(err),
      handleFailed: (msg, err) => deps.onEvent({ callId: '', queue: '', attempt: msg.info.deliveryCount + 1, result: 'failed', error: describeError(err) }),
    },
  });
  supervisor.start();
  return {
    stop: async (graceMs = Infinity) => {
      await supervisor.drain(graceMs);
    },
  };
}
