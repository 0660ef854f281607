import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { MsgHdrsImpl } from '@nats-io/nats-core';
import { context } from '@opentelemetry/api';
import { MESSAGING_SYSTEM, TelemetryAttributes as A } from '../telemetry/attributes.js';
import { endSpan, errorFailure, PRODUCER, traceCarrierOf, tracer } from '../telemetry/spans.js';
import { encodeEnvelope, type Invocation } from './envelope.js';
import { PayloadTooLargeError, QueueUnavailableError } from './errors.js';
import type { QueueConnection } from './connection.js';

export interface PublishResult {
  /** Stream sequence of the stored invocation. */
  readonly seq: number;
  /** true when JetStream recognised the message id within its duplicate window and did not store it again. */
  readonly duplicate: boolean;
}

export interface InvocationPublisher {
  /** Resolves only after JetStream's PubAck: the invocation is durable. */
  publish(subject: string, invocation: Invocation): Promise<PublishResult>;
}

export interface PublisherOptions {
  /** How long to wait for the PubAck before answering 503; ms. */
  publishTimeoutMs: number;
}

/** Bytes NATS counts against max_payload for the protocol framing of headers ("NATS/1.0\r\n" ... "\r\n"). */
function encodedSize(invocationHeaders: ReturnType<typeof encodeEnvelope>['headers']): number {
  return invocationHeaders instanceof MsgHdrsImpl ? invocationHeaders.encode().length : 0;
}

export function createPublisher(queue: QueueConnection, js: JetStreamClient, opts: PublisherOptions): InvocationPublisher {
  const publishOnce = async (subject: string, invocation: Invocation): Promise<PublishResult> => {
    // Publishing while disconnected would sit in the client's reconnect buffer: the caller would get
    // a 503 after the timeout yet the message might still be stored later. Refuse at once instead.
    if (!queue.isConnected()) throw new QueueUnavailableError('not connected to NATS');
    const { headers, data } = encodeEnvelope(invocation);
    const maxPayload = queue.nc.info?.max_payload;
    const size = encodedSize(headers) + data.length;
    if (maxPayload !== undefined && size > maxPayload) throw new PayloadTooLargeError(size, maxPayload);
    let ack: PubAck;
    try {
      ack = await js.publish(subject, data, { headers, timeout: opts.publishTimeoutMs });
    } catch (err) {
      throw new QueueUnavailableError(describe(err), { cause: err });
    }
    return { seq: ack.seq, duplicate: ack.duplicate };
  };

  return {
    // A PRODUCER span, child of the active context (the gateway's server span). Its context rides
    // in the envelope, so every attempt's processing joins the same trace.
    async publish(subject, invocation) {
      const parent = context.active();
      const span = tracer().startSpan(`publish ${subject}`, PRODUCER, parent);
      if (span.isRecording()) {
        span.setAttributes({
          [A.messagingSystem]: MESSAGING_SYSTEM,
          [A.messagingDestinationName]: subject,
          [A.messagingOperationType]: 'publish',
          [A.messagingOperationName]: 'publish',
          [A.messagingMessageId]: invocation.callId,
          [A.callId]: invocation.callId,
          [A.faasInvokedName]: invocation.functionName,
        });
      }
      const carrier = traceCarrierOf(span, parent);
      try {
        const result = await publishOnce(subject, carrier ? { ...invocation, ...carrier } : invocation);
        endSpan(span);
        return result;
      } catch (err) {
        endSpan(span, undefined, errorFailure(err));
        throw err;
      }
    },
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'JetStream did not acknowledge the publish in time';
    if (err.name === 'NoRespondersError') return 'no JetStream stream is listening on the subject';
    return err.message;
  }
  return String(err);
}
