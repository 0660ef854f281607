import { Match, type MsgHdrs } from '@nats-io/nats-core';
import { decodeEnvelope, EnvelopeHeader, PoisonMessageError, type Invocation } from './envelope.js';
import { decodeQueueRequest, looksLikeJsonObject, type QueueRequestContext } from './openfaas-request.js';

/**
 * Decodes one message of a work stream, whoever published it, per message (no setting):
 * - a message with an `Asyncfn-Version` header is asyncfn's envelope (its own gateway's);
 * - otherwise a body that is a JSON object is an OpenFaaS gateway's `QueueRequest`;
 * - anything else is read as an envelope, whose decoder then lists what is missing.
 *
 * Throws {@link PoisonMessageError} listing every problem. `context` is asked for only when the
 * message is a QueueRequest (it reads the message's delivery info).
 */
export function decodeMessage(headers: MsgHdrs | undefined, data: Uint8Array, context: () => QueueRequestContext): Invocation {
  if (isEnvelope(headers) || !looksLikeJsonObject(data)) {
    try {
      return decodeEnvelope(headers, data);
    } catch (err) {
      // Neither format: say so for the OpenFaaS user too, not only what the envelope lacks.
      if (err instanceof PoisonMessageError && !isEnvelope(headers)) {
        throw new PoisonMessageError([...err.reasons, 'not an OpenFaaS QueueRequest either: the body is not a JSON object']);
      }
      throw err;
    }
  }
  return decodeQueueRequest(headers, data, context());
}

/** Asyncfn's gateway always writes `Asyncfn-Version`; it is what tells its envelope apart. */
function isEnvelope(headers: MsgHdrs | undefined): boolean {
  // The exact name first: nats.js's case-insensitive lookup scans every header.
  return headers !== undefined && (headers.has(EnvelopeHeader.version) || headers.has(EnvelopeHeader.version, Match.IgnoreCase));
}
