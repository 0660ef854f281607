import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { MessageHandle } from '../../actors/invocation.types.js';
import type { Confirmer } from './confirmer.js';
import { inWriteBatch } from './write-batch.js';

/**
 * Adapts a JsMsg to the machine's narrow port. Fire-and-forget operations never throw: if the
 * connection is gone, JetStream redelivers after ack_wait anyway, so the failure is only logged.
 */
export function messageHandle(msg: JsMsg, logger: Logger, flush: () => Promise<void>, confirmer?: Confirmer): MessageHandle {
  const guarded = (what: string, op: () => void): void => {
    try {
      op();
    } catch (err) {
      logger.warn({ err, seq: msg.seq }, `could not ${what} message; JetStream will redeliver it after ack_wait`);
    }
  };
  return {
    deliveryCount: msg.info.deliveryCount,
    working: () => guarded('extend', () => msg.working()),
    nak: (delayMs) => guarded('nak', () => msg.nak(delayMs > 0 ? delayMs : undefined)),
    nakConfirmed: async (delayMs) => {
      msg.nak(delayMs > 0 ? delayMs : undefined);
      // NATS answers a PING only after every earlier write: once flushed, the nak is on the server.
      await flush();
    },
    term: () => guarded('term', () => msg.term()),
    ackAck: confirmer
      ? async () => {
          // One shared inbox and sweep for every ack (src/queue/confirmer.ts), not a request each.
          if (!(await confirmer.ackAck(msg))) throw new Error('the message was already acked, naked or termed');
        }
      : async () => {
          const confirmed = await inWriteBatch(() => msg.ackAck());
          if (!confirmed) throw new Error('the server did not confirm the ack');
        },
  };
}
