import { AsyncFnError } from '../errors.js';

/** JetStream did not acknowledge a publish (NATS down, timed out, no stream): the request is not accepted. */
export class QueueUnavailableError extends AsyncFnError {
  readonly code = 'ASYNCFN_ERR_QUEUE_UNAVAILABLE';
  override readonly httpStatus = 503;
  /**
   * true when the request reached NATS but no answer came in time: JetStream may still have stored
   * it (a publish that timed out is not a publish that failed). false when it surely did not
   * (refused before sending, no responders, an error answer from the server). Default false.
   */
  readonly outcomeUnknown: boolean;
  constructor(reason: string, opts?: ErrorOptions & { outcomeUnknown?: boolean }) {
    super(`queue unavailable: ${reason}`, opts);
    this.name = 'QueueUnavailableError';
    this.outcomeUnknown = opts?.outcomeUnknown ?? false;
  }
}

/** Body plus envelope headers exceed the NATS server's max_payload. */
export class PayloadTooLargeError extends AsyncFnError {
  readonly code = 'ASYNCFN_ERR_PAYLOAD_TOO_LARGE';
  override readonly httpStatus = 413;
  constructor(readonly sizeBytes: number, readonly limitBytes: number) {
    super(`request of ${sizeBytes} bytes (body and headers) exceeds the queue's ${limitBytes}-byte message limit`);
    this.name = 'PayloadTooLargeError';
  }
}

/** A stream or consumer created by an operator cannot be used as asyncfn needs it. */
export class IncompatibleQueueError extends AsyncFnError {
  readonly code = 'ASYNCFN_ERR_INCOMPATIBLE_QUEUE';
  constructor(readonly what: string, readonly problems: readonly string[]) {
    super(`${what} exists but cannot be used:\n  - ${problems.join('\n  - ')}`);
    this.name = 'IncompatibleQueueError';
  }
}
