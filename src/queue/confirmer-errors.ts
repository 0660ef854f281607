import { AsyncFnError, type MessageArgs } from '../errors.js';

/** The codes of the confirmer's errors; each answers 503 at the gateway (see src/errors.ts). */
type ConfirmationCode = 'ASYNCFN_ERR_CONFIRM_TIMEOUT' | 'ASYNCFN_ERR_NO_STREAM' | 'ASYNCFN_ERR_JETSTREAM_REJECTED' | 'ASYNCFN_ERR_CONFIRMER_CLOSED';

/**
 * A write sent through the {@link Confirmer} (src/queue/confirmer.ts) that did not get its
 * confirmation. Every subclass answers 503 at the gateway: the write was not accepted.
 */
export abstract class ConfirmationError<C extends ConfirmationCode = ConfirmationCode> extends AsyncFnError<C> {
  /**
   * true when the write reached NATS but no answer came: JetStream may have stored (or acked) it
   * anyway. false when it surely did not take effect (nobody listening, an error answer).
   */
  abstract readonly outcomeUnknown: boolean;
  /** The subject written to (a stream subject, `$KV.<bucket>.<key>`, or a `$JS.ACK...` reply subject). */
  readonly subject: string;
  constructor(code: C, args: MessageArgs<C>, subject: string, opts?: ErrorOptions) {
    super(code, args, opts);
    this.subject = subject;
  }
}

/** No answer within the write's deadline (NATS or JetStream stalled, or the connection dropped). */
export class ConfirmTimeoutError extends ConfirmationError<'ASYNCFN_ERR_CONFIRM_TIMEOUT'> {
  readonly outcomeUnknown = true;
  constructor(
    subject: string,
    readonly timeoutMs: number,
  ) {
    super('ASYNCFN_ERR_CONFIRM_TIMEOUT', [timeoutMs, subject], subject);
  }
}

/**
 * NATS answered "503 no responders": no stream captures the subject (or JetStream is not enabled,
 * or, for an ack, the consumer is gone). Nothing was stored.
 */
export class NoStreamError extends ConfirmationError<'ASYNCFN_ERR_NO_STREAM'> {
  readonly outcomeUnknown = false;
  constructor(subject: string) {
    super('ASYNCFN_ERR_NO_STREAM', [subject], subject);
  }
}

/** What JetStream answers instead of a PubAck: `{ error: { code, err_code, description } }`. */
export interface JetStreamApiErrorBody {
  /** HTTP-like status, e.g. 400, 503. */
  readonly code: number;
  /** JetStream's own error code, e.g. 10060 (expected stream does not match). 0 when absent. */
  readonly err_code?: number;
  readonly description?: string;
}

/** JetStream refused the write (wrong expected stream, sequence mismatch, stream full…); it did not store it. */
export class JetStreamRejectedError extends ConfirmationError<'ASYNCFN_ERR_JETSTREAM_REJECTED'> {
  readonly outcomeUnknown = false;
  /** JetStream's status code (`error.code`). */
  readonly status: number;
  /** JetStream's error code (`error.err_code`), 0 when the answer had none. */
  readonly errCode: number;
  readonly description: string;
  constructor(subject: string, body: JetStreamApiErrorBody) {
    const description = body.description ?? 'unknown error';
    super('ASYNCFN_ERR_JETSTREAM_REJECTED', [subject, description, body.code, body.err_code ?? 0], subject);
    this.status = body.code;
    this.errCode = body.err_code ?? 0;
    this.description = description;
  }
}

/** The confirmer (or its connection) closed before the answer came; the write may have taken effect. */
export class ConfirmerClosedError extends ConfirmationError<'ASYNCFN_ERR_CONFIRMER_CLOSED'> {
  readonly outcomeUnknown = true;
  constructor(subject: string, opts?: ErrorOptions) {
    super('ASYNCFN_ERR_CONFIRMER_CLOSED', [subject], subject, opts);
  }
}
