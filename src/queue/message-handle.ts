import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { MessageHandle } from '../../actors/invocation.types.js';
import type { Confirmer } from './confirmer.js';
import { inWriteBatch } from './write-batch.js';

/**
 * Adapts a JsMsg to the machine's narrow port. Fire-and-forget operations never throw: if the
 * connection is gone, JetStream redelivers after ack_wait anyway, so the failure is only logged.
 * One object per delivery with its methods on the prototype, not a closure each.
 */
class JsMessageHandle implements MessageHandle {
  readonly deliveryCount: number;
  readonly #msg: JsMsg;
  readonly #logger: Logger;
  readonly #flush: () => Promise<void>;
  readonly #confirmer: Confirmer | undefined;

  constructor(msg: JsMsg, logger: Logger, flush: () => Promise<void>, confirmer: Confirmer | undefined, deliveryCount: number) {
    this.#msg = msg;
    this.#logger = logger;
    this.#flush = flush;
    this.#confirmer = confirmer;
    this.deliveryCount = deliveryCount;
  }

  working(): void {
    this.#guarded('extend', (msg) => msg.working());
  }

  nak(delayMs: number): void {
    this.#guarded('nak', (msg) => msg.nak(delayMs > 0 ? delayMs : undefined));
  }

  async nakConfirmed(delayMs: number): Promise<void> {
    this.#msg.nak(delayMs > 0 ? delayMs : undefined);
    // NATS answers a PING only after every earlier write: once flushed, the nak is on the server.
    await this.#flush();
  }

  term(): void {
    this.#guarded('term', (msg) => msg.term());
  }

  ackAck(): Promise<void> {
    const msg = this.#msg;
    // One shared inbox and sweep for every ack (src/queue/confirmer.ts), not a request each. A
    // reaction on its promise, not an async frame: every invocation's settlement waits on one.
    if (this.#confirmer) return this.#confirmer.ackAck(msg).then(sentByThisHandle);
    return inWriteBatch(() => msg.ackAck()).then(confirmedByServer);
  }

  #guarded(what: string, op: (msg: JsMsg) => void): void {
    try {
      op(this.#msg);
    } catch (err) {
      this.#logger.warn({ err, seq: this.#msg.seq }, `could not ${what} message; JetStream will redeliver it after ack_wait`);
    }
  }
}

function sentByThisHandle(sent: boolean): void {
  if (!sent) throw new Error('the message was already acked, naked or termed');
}

function confirmedByServer(confirmed: boolean): void {
  if (!confirmed) throw new Error('the server did not confirm the ack');
}

/** The handle of `msg`, delivered `deliveryCount` times (read by the caller from the reply subject, src/queue/delivery-counts.ts). */
export function messageHandle(msg: JsMsg, logger: Logger, flush: () => Promise<void>, confirmer: Confirmer | undefined, deliveryCount: number): MessageHandle {
  return new JsMessageHandle(msg, logger, flush, confirmer, deliveryCount);
}
