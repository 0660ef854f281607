import { JetStreamApiError } from '@nats-io/jetstream';
import { context } from '@opentelemetry/api';
import { MESSAGING_SYSTEM, TelemetryAttributes as A } from '../telemetry/attributes.js';
import { endSpan, errorFailure, PRODUCER, traceCarrierOf, tracer, tracingActive } from '../telemetry/spans.js';
import { encodeEnvelopeBlock, EnvelopeHeader, type Invocation } from './envelope.js';
import { PayloadTooLargeError, QueueUnavailableError } from './errors.js';
import type { QueueConnection } from '../nats/connection.js';
import { preEncoded } from './encoded-headers.js';
import type { MsgHdrs } from '@nats-io/nats-core';
import { ConfirmationError, ConfirmTimeoutError, NoStreamError, type Confirmer } from './confirmer.js';
import { describeError } from '../errors.js';

export interface PublishResult {
  /** Stream sequence of the stored invocation. */
  readonly seq: number;
  /** true when JetStream recognised the message id within its duplicate window and did not store it again. */
  readonly duplicate: boolean;
}

export interface InvocationPublisher {
  /**
   * Resolves only after JetStream's PubAck: the invocation is durable. Rejects with a
   * QueueUnavailableError (its `outcomeUnknown` set when the message may be stored anyway),
   * PayloadTooLargeError, or what encoding throws. `timeoutMs`: the longest wait for the PubAck,
   * ms; default the publisher's `publishTimeoutMs`.
   */
  publish(subject: string, invocation: Invocation, timeoutMs?: number, opts?: PublishOptions): Promise<PublishResult>;
}

export interface PublishOptions {
  /**
   * Called once the invocation passed every check that can refuse it before sending (connected,
   * size), right before it is handed to the connection: writes made here go out in the same socket
   * write, ahead of the invocation (the gateway's unconfirmed `queued` record).
   */
  readonly beforeSend?: (() => void) | undefined;
  /** A delayed invocation's lane subject, where the scheduler moves it when due (EnvelopeHeader.dueSubject). */
  readonly dueSubject?: string | undefined;
  /**
   * The destination as the span is named (`publish <destination>`): the queue's subject for an
   * invocation published on one of its function lanes, so span names stay few. Default the subject.
   */
  readonly destination?: string | undefined;
}

export interface PublisherOptions {
  /** How long to wait for the PubAck before answering 503, ms (`publish_timeout`, default 1000). */
  publishTimeoutMs: number;
}

/**
 * Publishes through the connection's {@link Confirmer}: one shared inbox and one sweep timer
 * instead of nats.js's per-request machinery (a RequestOne, a timer and two Errors per publish;
 * ~8 µs of CPU per confirmed publish against ~25–30 µs, BENCHMARKS.md "Pieces").
 */
export function createPublisher(queue: QueueConnection, confirmer: Confirmer, opts: PublisherOptions): InvocationPublisher {
  // No async function here: every async request runs this, and each async layer costs a promise.
  const publishOnce = (subject: string, invocation: Invocation, timeoutMs: number, publishOpts: PublishOptions): Promise<PublishResult> => {
    // Publishing while disconnected would sit in the client's reconnect buffer: the caller would get
    // a 503 after the timeout yet the message might still be stored later. Refuse at once instead.
    if (!queue.isConnected()) return Promise.reject(new QueueUnavailableError('not connected to NATS'));
    let headers: MsgHdrs;
    try {
      // The header block written straight to bytes (no nats.js MsgHdrs), once, for the size check and the send.
      const block = encodeEnvelopeBlock(invocation, publishOpts.dueSubject === undefined ? undefined : [EnvelopeHeader.dueSubject, publishOpts.dueSubject]);
      const maxPayload = queue.nc.info?.max_payload;
      const size = block.length + invocation.body.length;
      if (maxPayload !== undefined && size > maxPayload) return Promise.reject(new PayloadTooLargeError(size, maxPayload));
      headers = preEncoded(block);
    } catch (err) {
      return Promise.reject(err);
    }
    // Every publish of one I/O phase (one per HTTP request read in it) goes out in one socket write
    // instead of one each (`batch`): nats.js flushes per microtask, and each request's handler runs
    // in its own macrotask (the flushes were ~20 % of the gateway's CPU at c=100).
    return confirmer.publish(subject, invocation.body, { headers, timeoutMs, batch: true, beforeSend: publishOpts.beforeSend }).then(
      (ack) => ({ seq: ack.seq, duplicate: ack.duplicate }),
      (err: unknown) => {
        throw new QueueUnavailableError(describe(err), { cause: err, outcomeUnknown: publishOutcomeUnknown(err) });
      },
    );
  };

  return {
    publish(subject, invocation, timeoutMs = opts.publishTimeoutMs, publishOpts = {}) {
      // Untraced, the invocation goes as it is (with the caller's own trace context, if any).
      if (!tracingActive()) return publishOnce(subject, invocation, timeoutMs, publishOpts);
      return publishTraced(subject, invocation, timeoutMs, publishOpts);
    },
  };

  /** A PRODUCER span, child of the active context (the gateway's server span). Its context rides in the envelope, so every attempt's processing joins the same trace. */
  async function publishTraced(subject: string, invocation: Invocation, timeoutMs: number, publishOpts: PublishOptions): Promise<PublishResult> {
    const parent = context.active();
    const span = tracer().startSpan(`publish ${publishOpts.destination ?? subject}`, PRODUCER, parent);
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
      const result = await publishOnce(subject, carrier ? { ...invocation, ...carrier } : invocation, timeoutMs, publishOpts);
      endSpan(span);
      return result;
    } catch (err) {
      endSpan(span, undefined, errorFailure(err));
      throw err;
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof ConfirmTimeoutError) return 'JetStream did not acknowledge the publish in time';
  if (err instanceof NoStreamError) return 'no JetStream stream is listening on the subject (yet)';
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'JetStream did not acknowledge the publish in time';
    // nats.js reports "no responders" on a publish as JetStreamNotEnabled ("jetstream is not enabled").
    if (err.name === 'JetStreamNotEnabled' || err.name === 'NoResponders') return 'no JetStream stream is listening on the subject (yet)';
  }
  return describeError(err);
}

/**
 * Whether a failed publish may nevertheless have been stored. The confirmer's errors say it
 * themselves (`outcomeUnknown`); for nats.js's own errors: Sure it was not: nobody was
 * subscribed to the subject (no responders, e.g. JetStream still starting after a restart), or
 * JetStream answered with an error (stream full, wrong sequence: the message was refused). Anything
 * else (a time-out, a connection lost with the request in flight) leaves it unknown.
 */
export function publishOutcomeUnknown(err: unknown): boolean {
  if (err instanceof ConfirmationError) return err.outcomeUnknown;
  if (!(err instanceof Error)) return true;
  return !['JetStreamNotEnabled', 'NoResponders', 'JetStreamApiError'].includes(err.name) && !(err instanceof JetStreamApiError);
}
