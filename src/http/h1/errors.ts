import { AsyncFnError, createError } from '../../errors.js';

/** A function's or callback receiver's answer is not valid HTTP/1.1 (./response-parser.ts says what). */
export class ResponseParseError extends AsyncFnError<'ASYNCFN_ERR_HTTP_RESPONSE'> {
  constructor(what: string) {
    super('ASYNCFN_ERR_HTTP_RESPONSE', [what]);
  }
}

/** The connection ended before the response did. */
export class ConnectionClosedError extends AsyncFnError<'ASYNCFN_ERR_HTTP_CLOSED'> {
  constructor(answered: boolean) {
    super('ASYNCFN_ERR_HTTP_CLOSED', [
      answered ? 'the server closed the connection before the response was complete' : 'the server closed the connection without answering',
    ]);
  }
}

/** No connection within the connect timeout. */
export class ConnectTimeoutError extends createError('ASYNCFN_ERR_HTTP_CONNECT_TIMEOUT') {}

/** The client was destroyed with the request in flight or after. */
export class ClientDestroyedError extends createError('ASYNCFN_ERR_HTTP_DESTROYED') {}
