import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/nats-core';
import { filter, firstValueFrom, Observable } from 'rxjs';
import type { Logger } from 'pino';
import type { Delivery } from '../../actors/queue.supervisor.js';
import { decodeEnvelope, PoisonMessageError } from './envelope.js';
import { messageHandle } from './message-handle.js';
import type { QueueConnection } from './connection.js';

export interface PullOptions {
  /** How long one pull request waits for messages, ms (JetStream minimum 1000). */
  expiresMs: number;
}

/**
 * The supervisor's pull source: each subscription is one JetStream pull request for at most
 * `max` messages, delivered as soon as they arrive and never buffered beyond that count.
 * A request ends when it is filled, expires, or the connection drops; the supervisor then asks again.
 */
export function pullSource(
  queue: QueueConnection,
  consumer: Consumer,
  opts: PullOptions,
  logger: Logger,
): (max: number) => Observable<Delivery> {
  return (max) =>
    new Observable<Delivery>((subscriber) => {
      let messages: ConsumerMessages | undefined;
      let unsubscribed = false;
      const stop = (): void => void messages?.close().catch(() => undefined);
      const disconnected = queue.connected$.pipe(filter((up) => !up)).subscribe(stop);
      (async () => {
        // A pull request sent while disconnected would be lost with the old server connection.
        await firstValueFrom(queue.connected$.pipe(filter(Boolean)));
        if (unsubscribed) return;
        messages = await consumer.fetch({ max_messages: max, expires: opts.expiresMs });
        if (unsubscribed) {
          await messages.close();
          return;
        }
        for await (const msg of messages) {
          // Arrived after the supervisor stopped listening: give it straight back.
          if (unsubscribed) msg.nak();
          else subscriber.next(toDelivery(msg, logger, () => queue.nc.flush()));
        }
        subscriber.complete();
      })().catch((err: unknown) => subscriber.error(err));
      return () => {
        unsubscribed = true;
        disconnected.unsubscribe();
        stop();
      };
    });
}

export function toDelivery(msg: JsMsg, logger: Logger, flush: () => Promise<void>): Delivery {
  const message = messageHandle(msg, logger, flush);
  let headers: MsgHdrs | undefined;
  try {
    headers = msg.headers;
  } catch (err) {
    // nats.js parses headers on first access and throws on a name it would not write itself (a
    // space, non-ASCII), which other clients can publish: poison, kept without its unreadable headers.
    return { message, decoded: { ok: false, reasons: [`unreadable headers: ${String(err)}`], raw: { headers: undefined, data: msg.data } } };
  }
  try {
    return { message, decoded: { ok: true, invocation: decodeEnvelope(headers, msg.data) } };
  } catch (err) {
    const reasons = err instanceof PoisonMessageError ? err.reasons : [String(err)];
    return { message, decoded: { ok: false, reasons, raw: { headers, data: msg.data } } };
  }
}
