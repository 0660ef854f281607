import { errors } from '@nats-io/nats-core';
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

/**
 * What a gateway's or worker's failed start-up says. nats.js's own request timeout is a bare
 * "timeout" whose stack shows only its timer (asyncfn connects with `noAsyncTraces`), so one is
 * named for what it is; any other error passes unchanged.
 */
export function startupFailure(component: 'gateway' | 'worker', err: unknown): unknown {
  if (!(err instanceof errors.TimeoutError)) return err;
  return new QueueUnavailableError(
    `NATS did not answer a request of the ${component}'s start-up in time (nats-server overloaded, or JetStream not ready); the ${component} exits`,
    { cause: err },
  );
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
