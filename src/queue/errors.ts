import { AsyncFnError } from '../errors.js';

/** JetStream did not acknowledge a publish (NATS down, timed out, no stream): the request is not accepted. */
export class QueueUnavailableError extends AsyncFnError<'ASYNCFN_ERR_QUEUE_UNAVAILABLE'> {
  /**
   * true when the request reached NATS but no answer came in time: JetStream may still have stored
   * it (a publish that timed out is not a publish that failed). false when it surely did not
   * (refused before sending, no responders, an error answer from the server). Default false.
   */
  readonly outcomeUnknown: boolean;
  constructor(reason: string, opts?: ErrorOptions & { outcomeUnknown?: boolean }) {
    super('ASYNCFN_ERR_QUEUE_UNAVAILABLE', [reason], opts);
    this.outcomeUnknown = opts?.outcomeUnknown ?? false;
  }
}

/** Body plus envelope headers exceed the NATS server's max_payload. */
export class PayloadTooLargeError extends AsyncFnError<'ASYNCFN_ERR_PAYLOAD_TOO_LARGE'> {
  constructor(
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super('ASYNCFN_ERR_PAYLOAD_TOO_LARGE', [sizeBytes, limitBytes]);
  }
}

/** A stream or consumer created by an operator cannot be used as asyncfn needs it. */
export class IncompatibleQueueError extends AsyncFnError<'ASYNCFN_ERR_INCOMPATIBLE_QUEUE'> {
  constructor(
    readonly what: string,
    readonly problems: readonly string[],
  ) {
    super('ASYNCFN_ERR_INCOMPATIBLE_QUEUE', [what, problems.join('\n  - ')]);
  }
}
