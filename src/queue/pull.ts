import type { ConsumeCallback, Consumer, ConsumerMessages, FetchOptions, JsMsg } from '@nats-io/jetstream';
import { createInbox, type MsgHdrs } from '@nats-io/nats-core';
import { filter, firstValueFrom, map, Observable } from '../../actors/rx.js';
import type { Logger } from 'pino';
import type { Delivery } from '../../actors/queue.supervisor.js';
import { decodeMessage } from './decode.js';
import { deliveryCountsOf } from './delivery-counts.js';
import { CALL_ID_RULE } from './call-id.js';
import { decodeEnvelope, EnvelopeHeader, PoisonMessageError, type Invocation } from './envelope.js';
import { readHeaderBlock } from './header-block.js';
import type { QueueRequestContext } from './openfaas-request.js';
import type { Confirmer } from './confirmer.js';
import { messageHandle } from './message-handle.js';
import type { QueueConnection } from '../nats/connection.js';
import { losesRedeliveries } from './topology-checks.js';

export interface PullOptions {
  /** How long one pull request waits for messages, ms (JetStream minimum 1000). */
  expiresMs: number;
  /**
   * What becomes of a message that arrives after the supervisor stopped listening to its pull (an
   * idle long poll reclaimed for a busier lane, a lane removed, a drain): it was never worked on,
   * and goes back to JetStream. Default: `nak()` at once.
   */
  giveBack?: (msg: JsMsg) => void;
}

/** What decoding an OpenFaaS QueueRequest needs from the config (see openfaas-request.ts). */
export type QueueRequestDefaults = Pick<QueueRequestContext, 'defaultNamespace' | 'maxEventAgeMs'>;

/** Whether the connection is up, now (on subscribe) and at each change. */
function connectedOf(queue: QueueConnection): Observable<boolean> {
  return new Observable<boolean>((subscriber) => {
    subscriber.next(queue.isConnected());
    return queue.onConnectedChange((up) => subscriber.next(up));
  });
}

/**
 * A demand-driven source of raw JetStream messages: each subscription is one pull request
 * (`consumer.fetch`) for at most `max` messages, delivered as soon as they arrive and never
 * buffered beyond that count. A request ends when it is filled, expires, or the connection drops;
 * the supervisor then asks again. Every consumer of the worker (invocations, durable callbacks,
 * the delayed scheduler) pulls through this.
 */
export function fetchSource(queue: QueueConnection, consumer: Consumer, opts: PullOptions): (max: number) => Observable<JsMsg> {
  const giveBack = opts.giveBack ?? ((msg: JsMsg) => msg.nak());
  const clearEnded = endedRequestSweep(queue, consumer);
  return (max) =>
    new Observable<JsMsg>((subscriber) => {
      let messages: ConsumerMessages | undefined;
      let unsubscribed = false;
      /** Messages this request has received: once it has `max`, the server has ended it. */
      let received = 0;
      const stop = (): void => void messages?.close().catch(() => undefined);
      const disconnected = connectedOf(queue)
        .pipe(filter((up) => !up))
        .subscribe(stop);
      (async () => {
        // A pull request sent while disconnected would be lost with the old server connection.
        await firstValueFrom(connectedOf(queue).pipe(filter(Boolean)));
        if (unsubscribed) return;
        // Each message is handed over from nats.js's subscription callback as it is read, not
        // through the pull's async iterator (three promises and a microtask hop per message).
        // nats.js types `callback` for consume() only; its pull (`PullConsumerMessagesImpl`,
        // @nats-io/jetstream 3.3) takes it for fetch() too. A release that stopped would deliver
        // nothing here, and every integration test that runs an invocation fails.
        const fetchOptions: FetchOptions & ConsumeCallback = {
          max_messages: max,
          expires: opts.expiresMs,
          callback: (msg) => {
            received += 1;
            // Arrived after the supervisor stopped listening: give it straight back.
            if (unsubscribed) giveBack(msg);
            else subscriber.next(msg);
          },
        };
        messages = await consumer.fetch(fetchOptions);
        // Ended while the request was being sent: it may already be taking messages.
        if (unsubscribed) endDraining(messages, clearEnded);
        // The request's end: filled, expired, closed, or an error status from the server.
        const failure = await messages.closed();
        if (failure) throw failure;
        subscriber.complete();
      })().catch((err: unknown) => subscriber.error(err));
      return () => {
        unsubscribed = true;
        disconnected.unsubscribe();
        // Filled, the request is over on the server: nothing more can be on its way.
        if (messages && received < max && queue.isConnected()) endDraining(messages, clearEnded);
        else stop();
      };
    });
}

/** The part of nats.js's pull (`PullConsumerMessagesImpl`, @nats-io/jetstream 3.3) that can end it without a loss. */
interface DrainablePull {
  readonly sub?: { drain?: () => Promise<void>; isClosed?: () => boolean };
}

/**
 * Ends a pull request without losing what the server is sending it. JetStream has no way to
 * withdraw a pull request: it ends when the client unsubscribes its inbox. `close()` does that and
 * drops every message still on its way, whose delivery JetStream has counted all the same: an
 * attempt spent on nothing, the message back only after ack_wait. Draining the inbox instead
 * (UNSUB, then a round trip to the server) still hands over what arrives before the server has
 * seen the UNSUB; the pull's callback gives it back (`giveBack`); then the pull is closed. nats.js keeps
 * that subscription to itself, hence the cast: if a release renames it, this falls back to
 * `close()`, and test/integration/give-back.test.ts fails.
 */
function endDraining(messages: ConsumerMessages, afterwards?: () => void): void {
  const sub = (messages as unknown as DrainablePull).sub;
  // Closed already: nats.js ended the request itself (expired, or an error status from the server).
  const drained = typeof sub?.drain === 'function' && sub.isClosed?.() === false ? sub.drain().catch(() => undefined) : Promise.resolve();
  void drained
    .then(() => {
      afterwards?.();
      return messages.close();
    })
    .catch(() => undefined);
}

/** The part of nats.js's pull consumer (`PullConsumerImpl`, @nats-io/jetstream 3.3) that names it in the JetStream API. */
interface NamedConsumer {
  readonly api?: { readonly prefix?: unknown };
  readonly stream?: unknown;
  readonly _info?: { readonly name?: unknown };
}

/**
 * What clears the pull requests this worker ended from the server, where the server needs it.
 * A request ended early stays on the server, without interest, until the consumer next looks at
 * its requests. nats-server before 2.10.16 (Debian 12's is 2.9.10) mishandles a retry that falls
 * due while only such requests wait: it counts the delivery, sends nothing, and sends it again only
 * after ack_wait (60 s by default) instead of the back-off (and moves its cursor of new messages
 * back one). Once the inbox is drained, a consumer-info request makes the consumer drop every
 * request without interest, and takes nothing from it (a pull request would: it makes the server
 * pick the next message for it, the very path that loses a due retry). Its answer goes to an inbox
 * nobody listens to. The server's version is read each time (a reconnect may reach another);
 * undefined where nats.js's names cannot be read, and test/integration/give-back.test.ts fails.
 */
function endedRequestSweep(queue: QueueConnection, consumer: Consumer): (() => void) | undefined {
  const { api, stream, _info } = consumer as unknown as NamedConsumer;
  const [prefix, name] = [api?.prefix, _info?.name];
  if (typeof prefix !== 'string' || typeof stream !== 'string' || typeof name !== 'string') return undefined;
  const subject = `${prefix}.CONSUMER.INFO.${stream}.${name}`;
  return () => {
    if (!queue.isConnected() || !losesRedeliveries(queue.nc.info?.version)) return;
    queue.nc.publish(subject, undefined, { reply: createInbox() });
  };
}

/** The part of nats.js's delivered message (`JsMsgImpl.msg`, a `MsgImpl`, @nats-io/nats-core 3.3) that holds its bytes. */
interface RawDelivery {
  readonly msg?: { readonly _rdata?: unknown; readonly _msg?: { readonly hdr?: unknown } };
}

/**
 * A delivered message's header block as received (header block then payload in one buffer, the
 * block's length in the protocol line), or undefined without one. nats.js keeps both private and
 * parses the block into its `MsgHdrs` on first access to `headers`, then keeps that object on the
 * message while the invocation runs: ~2.3 of the 7.8 µs of reading an envelope (`npm run bench`,
 * pieces) and ~3 KB per in-flight invocation (BENCHMARKS.md). If a release renames them this
 * returns undefined, the worker reads `msg.headers` as before, and
 * test/integration/delivered-headers.test.ts fails.
 */
export function deliveredHeaderBlock(msg: JsMsg): Uint8Array | undefined {
  const inner = (msg as unknown as RawDelivery).msg;
  const length = inner?._msg?.hdr;
  const raw = inner?._rdata;
  if (typeof length !== 'number' || length <= 0 || !(raw instanceof Uint8Array) || length > raw.length) return undefined;
  return raw.subarray(0, length);
}

/**
 * The invocation supervisor's pull source: `fetchSource`, each message decoded into a Delivery.
 */
export function pullSource(
  queue: QueueConnection,
  consumer: Consumer,
  opts: PullOptions & {
    readonly queueRequests: QueueRequestDefaults;
    /**
     * Records in the attempt ledger that a first delivery given back unworked started no attempt
     * (a redelivery with no entry takes attempt 1 as made); resolves once stored. A later delivery
     * needs nothing: its attempt is recorded only when it starts one. Absent, such a first
     * delivery counts as an attempt.
     */
    readonly noFirstAttempt?: (invocation: Invocation) => Promise<void>;
  },
  logger: Logger,
  /** Confirms the messages' double acks over one shared inbox; absent, nats.js's own `ackAck()`. */
  confirmer?: Confirmer,
): (max: number) => Observable<Delivery> {
  const { noFirstAttempt } = opts;
  const giveBack = noFirstAttempt
    ? (msg: JsMsg): void => {
        if (msg.info.deliveryCount > 1) return msg.nak();
        const invocation = decodedInvocation(msg, opts.queueRequests);
        if (!invocation) return msg.nak();
        // Recorded first, then given back: the next delivery, on any replica, reads the entry.
        noFirstAttempt(invocation).then(
          () => msg.nak(),
          (err: unknown) => {
            logger.warn({ err, callId: invocation.callId }, 'a first delivery given back unworked could not be recorded: it counts as an attempt');
            msg.nak();
          },
        );
      }
    : undefined;
  const fetch = fetchSource(queue, consumer, { ...opts, giveBack });
  const flush = (): Promise<void> => queue.nc.flush();
  // Made once, not per pull: V8 keeps a closure's optimized code only while some closure of it is alive.
  const deliver = (msg: JsMsg): Delivery => toDelivery(msg, logger, flush, opts.queueRequests, confirmer);
  return (max) => fetch(max).pipe(map(deliver));
}

/**
 * One message as the supervisor gets it: asyncfn's envelope or an OpenFaaS QueueRequest decoded
 * into an invocation (src/queue/decode.ts), or poison with its reasons and the message as it was.
 */
export function toDelivery(msg: JsMsg, logger: Logger, flush: () => Promise<void>, defaults: QueueRequestDefaults, confirmer?: Confirmer): Delivery {
  // Read from the reply subject without nats.js's DeliveryInfo, which would stay on the message;
  // a subject it cannot read goes to nats.js, whose error is the one to see.
  const { reply } = msg as unknown as { readonly reply?: unknown };
  const counts = (typeof reply === 'string' ? deliveryCountsOf(reply) : undefined) ?? msg.info;
  const message = messageHandle(msg, logger, flush, confirmer, counts.deliveryCount);
  // What still waits behind it in the same consumer: the lane supervisor's backlog signal.
  const waiting = counts.pending;
  // asyncfn's own envelope, read from the raw header block without nats.js's header object.
  const block = deliveredHeaderBlock(msg);
  const read = block === undefined ? undefined : readHeaderBlock(block);
  if (read?.has(EnvelopeHeader.version) === true) {
    try {
      return { message, waiting, decoded: { ok: true, invocation: decodeEnvelope(read, msg.data) } };
    } catch {
      // Poison: decoded again below with nats.js's headers, which its dead letter keeps.
    }
  }
  let headers: MsgHdrs | undefined;
  try {
    headers = msg.headers;
  } catch (err) {
    // nats.js parses headers on first access and throws on a name it would not write itself (a
    // space, non-ASCII), which other clients can publish: poison, kept without its unreadable headers.
    return { message, waiting, decoded: { ok: false, reasons: [`unreadable headers: ${String(err)}`], raw: { headers: undefined, data: msg.data } } };
  }
  try {
    const context = (): QueueRequestContext => ({ ...queueRequestContext(msg, defaults), onCallIdReplaced: (given, used) => warnCallIdReplaced(logger, given, used) });
    return { message, waiting, decoded: { ok: true, invocation: decodeMessage(headers, msg.data, context) } };
  } catch (err) {
    const reasons = err instanceof PoisonMessageError ? err.reasons : [String(err)];
    return { message, waiting, decoded: { ok: false, reasons, raw: { headers, data: msg.data } } };
  }
}

/** The invocation a message holds, or undefined when it is poison (its next delivery dead-letters it). */
function decodedInvocation(msg: JsMsg, defaults: QueueRequestDefaults): Invocation | undefined {
  try {
    return decodeMessage(msg.headers, msg.data, () => queueRequestContext(msg, defaults));
  } catch {
    return undefined;
  }
}

/** A QueueRequest's X-Call-Id that could not be kept: said once per delivery, with the one used. */
function warnCallIdReplaced(logger: Logger, given: string, used: string): void {
  logger.warn(
    { callId: used, callerCallId: given.slice(0, 200) },
    `the QueueRequest's X-Call-Id is no call id asyncfn can keep (${CALL_ID_RULE}): it runs under ${used}, which its function and callback receive`,
  );
}

/**
 * The stored message's identity and time: a QueueRequest without an X-Call-Id gets its call id
 * from the stream and sequence (the same on every redelivery), its enqueue time from the store time.
 */
function queueRequestContext(msg: JsMsg, defaults: QueueRequestDefaults): QueueRequestContext {
  const { stream, streamSequence } = msg.info;
  const { timestampNanos } = msg;
  return {
    ...defaults,
    storedAtMs: Number(timestampNanos / 1_000_000n),
    messageKey: `${stream}/${streamSequence}/${timestampNanos}`,
  };
}
