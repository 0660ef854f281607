/**
 * Every error asyncfn raises on purpose, in one table (as fastify's `lib/errors.js` with
 * `@fastify/error`): a stable code, the HTTP status the gateway answers with, and the message
 * template. Error classes are derived from it ({@link AsyncFnError}, {@link createError}); the
 * gateway's single error handler maps them to responses; anything else is a 500.
 *
 * A unit test checks this table against the README's error reference in both directions: the
 * codes with `internal: true` are those listed under "Codes that never reach an HTTP client".
 */

/** One row of the table. */
export interface ErrorSpec {
  /** The status the gateway answers with; 500 for codes that never reach an HTTP client. */
  readonly status: number;
  /** The message: each `%s` is replaced by the next argument. `'%s'` where each site has its own words. */
  readonly message: string;
  /** Never reaches an HTTP client (startup, worker, CLI): documented in the README's second table. */
  readonly internal?: true;
  /**
   * The code of a refusal node or fastify made on their own with this status (no asyncfn error
   * behind it): see {@link codeForStatus}.
   */
  readonly byStatus?: true;
}

export const ERRORS = {
  // 400
  ASYNCFN_ERR_BAD_REQUEST: { status: 400, message: '%s', byStatus: true },
  ASYNCFN_ERR_CALLBACK_REFUSED: { status: 400, message: 'callback target refused: %s %s (not in callback_allow)' },
  ASYNCFN_ERR_INVALID_FUNCTION_NAME: {
    status: 400,
    message: 'invalid function name "%s": expected a DNS-1123 label, optionally followed by .namespace',
  },
  ASYNCFN_ERR_PATH_REFUSED: { status: 400, message: 'path refused: %s' },
  ASYNCFN_ERR_BATCH_ITEM_INVALID: { status: 400, message: 'batch item %s (line %s): %s' },
  ASYNCFN_ERR_BATCH_EMPTY: { status: 400, message: 'the batch has no items' },
  // 401
  ASYNCFN_ERR_UNAUTHORIZED: { status: 401, message: '%s' },
  // 403
  ASYNCFN_ERR_PROGRESS_SIGNATURE: { status: 403, message: 'progress URL refused: %s' },
  ASYNCFN_ERR_PROGRESS_EXPIRED: { status: 403, message: 'progress URL expired at %s: it lasts as long as the attempt it was given to' },
  ASYNCFN_ERR_CROSS_SITE: { status: 403, message: 'refused: a page of another site (%s) may not change state here; use the console or a client that is no web page' },
  // 404
  ASYNCFN_ERR_FUNCTION_NOT_FOUND: { status: 404, message: 'function "%s" not found' },
  ASYNCFN_ERR_NO_ROUTE: { status: 404, message: 'no route for %s', byStatus: true },
  ASYNCFN_ERR_INVOCATION_NOT_FOUND: { status: 404, message: 'no invocation with call id "%s"' },
  ASYNCFN_ERR_NO_RESULT: { status: 404, message: '%s' },
  ASYNCFN_ERR_INVOCATION_FINISHED: { status: 404, message: 'invocation "%s" already finished (%s)' },
  ASYNCFN_ERR_BATCH_NOT_FOUND: { status: 404, message: 'no batch with id "%s"' },
  ASYNCFN_ERR_DEAD_LETTER_NOT_FOUND: { status: 404, message: 'no dead letter with sequence %s' },
  // 405, 408, 409, 413, 415, 431
  ASYNCFN_ERR_METHOD_NOT_ALLOWED: { status: 405, message: '%s', byStatus: true },
  ASYNCFN_ERR_REQUEST_TIMEOUT: { status: 408, message: 'the request did not arrive within read_timeout', byStatus: true },
  ASYNCFN_ERR_PROGRESS_CLOSED: { status: 409, message: 'invocation "%s" already finished (%s): progress is no longer recorded' },
  ASYNCFN_ERR_BATCH_UPLOADING: {
    status: 409,
    message: 'batch "%s" is still being uploaded: it can be cancelled once its request has ended (its state is then "accepted")',
  },
  ASYNCFN_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body exceeds the %s-byte limit (max_body_size)', byStatus: true },
  ASYNCFN_ERR_LARGE_BODY_TOO_LARGE: { status: 413, message: 'request body exceeds the %s-byte limit for large bodies (max_large_body_size)' },
  ASYNCFN_ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    message: "request of %s bytes (body and headers) exceeds the queue's %s-byte message limit",
  },
  ASYNCFN_ERR_BATCH_TOO_LARGE: { status: 413, message: 'batch item %s (line %s): %s' },
  ASYNCFN_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: '%s', byStatus: true },
  ASYNCFN_ERR_HEADERS_TOO_LARGE: { status: 431, message: '%s', byStatus: true },
  // 5xx
  ASYNCFN_ERR_CANNOT_LIST: { status: 501, message: 'the function registry cannot list functions (URL template mode)' },
  ASYNCFN_ERR_UPSTREAM_UNREACHABLE: { status: 502, message: 'could not reach function "%s": %s' },
  ASYNCFN_ERR_QUEUE_UNAVAILABLE: { status: 503, message: 'queue unavailable: %s' },
  ASYNCFN_ERR_SHUTTING_DOWN: { status: 503, message: 'the gateway is shutting down' },
  ASYNCFN_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'function "%s" did not answer within %s (%s ms)' },
  ASYNCFN_ERR_BAD_ANNOTATION: { status: 500, message: 'function "%s" has an invalid %s annotation "%s"' },
  ASYNCFN_ERR_INTERNAL: { status: 500, message: 'internal error' },

  // Never reach an HTTP client.
  ASYNCFN_ERR_CONFIG: { status: 500, message: 'invalid configuration:\n  - %s', internal: true },
  ASYNCFN_ERR_INCOMPATIBLE_QUEUE: { status: 500, message: '%s exists but cannot be used:\n  - %s', internal: true },
  ASYNCFN_ERR_NATS_SERVER_MISSING: {
    status: 500,
    message:
      'nats-server is not installed. Install it with `sudo apt-get install -y nats-server` (Debian/Ubuntu) ' +
      'or `brew install nats-server` (macOS), or set NATS_URL to a NATS server with JetStream enabled.',
    internal: true,
  },
  ASYNCFN_ERR_NATS_CONNECT: { status: 500, message: '%s', internal: true },
  ASYNCFN_ERR_UP_LOCKED: { status: 500, message: '%s', internal: true },
  ASYNCFN_ERR_CALLBACK_FAILED: { status: 500, message: 'callback failed: %s', internal: true },
  ASYNCFN_ERR_POISON_MESSAGE: { status: 500, message: 'undecodable message: %s', internal: true },
  // The worker's own HTTP/1.1 client (src/http/h1/): a function call or callback fails with them.
  ASYNCFN_ERR_HTTP_RESPONSE: { status: 500, message: 'invalid HTTP response: %s', internal: true },
  ASYNCFN_ERR_HTTP_CLOSED: { status: 500, message: '%s', internal: true },
  ASYNCFN_ERR_HTTP_CONNECT_TIMEOUT: { status: 500, message: 'could not connect within %s ms', internal: true },
  ASYNCFN_ERR_HTTP_DESTROYED: { status: 500, message: 'the HTTP client was destroyed (the worker is stopping)', internal: true },
  // The confirmer's errors: 503 should one reach the gateway's handler (the publisher turns them
  // into ASYNCFN_ERR_QUEUE_UNAVAILABLE first).
  ASYNCFN_ERR_CONFIRM_TIMEOUT: {
    status: 503,
    message: 'no confirmation from JetStream within %s ms (subject %s); the write may still have taken effect',
    internal: true,
  },
  ASYNCFN_ERR_NO_STREAM: { status: 503, message: 'no JetStream stream or consumer is listening on %s', internal: true },
  ASYNCFN_ERR_JETSTREAM_REJECTED: { status: 503, message: 'JetStream refused the write to %s: %s (%s/%s)', internal: true },
  ASYNCFN_ERR_CONFIRMER_CLOSED: {
    status: 503,
    message: 'the confirmer closed before JetStream confirmed the write to %s',
    internal: true,
  },
} as const satisfies Record<`ASYNCFN_ERR_${string}`, ErrorSpec>;

/** A code of the table. */
export type ErrorCode = keyof typeof ERRORS;

/** One argument per `%s` of a template, in order. */
type TemplateArgs<T extends string> = T extends `${string}%s${infer Rest}` ? [string | number, ...TemplateArgs<Rest>] : [];

/** The arguments the message template of `C` takes. */
export type MessageArgs<C extends ErrorCode> = TemplateArgs<(typeof ERRORS)[C]['message']>;

/** The message of `code` with its template's `%s` replaced by `args`, in order. */
export function formatMessage<C extends ErrorCode>(code: C, args: MessageArgs<C>): string {
  const values = args as readonly (string | number)[];
  let i = 0;
  return ERRORS[code].message.replace(/%s/g, () => String(values[i++]));
}

const BY_STATUS: ReadonlyMap<number, ErrorCode> = new Map(
  (Object.entries(ERRORS) as [ErrorCode, ErrorSpec][]).filter(([, spec]) => spec.byStatus).map(([code, spec]) => [spec.status, code]),
);

/**
 * The code of a refusal that node or fastify made on their own (no asyncfn error behind it), by
 * status: the X-Asyncfn-Error every refusal carries. A status without a code of its own (414,
 * 417, …) is ASYNCFN_ERR_BAD_REQUEST.
 */
export function codeForStatus(status: number): ErrorCode {
  return BY_STATUS.get(status) ?? 'ASYNCFN_ERR_BAD_REQUEST';
}

/** The status the gateway answers `code` with. */
export function httpStatusOf(code: ErrorCode): number {
  return ERRORS[code].status;
}

/**
 * The base of every coded error: its `code`, `httpStatus` and message come from {@link ERRORS}.
 * Subclasses with fields of their own extend it, passing their code and template arguments.
 */
export abstract class AsyncFnError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly httpStatus: number;
  constructor(code: C, args: MessageArgs<C>, opts?: ErrorOptions) {
    super(formatMessage(code, args), opts);
    this.code = code;
    this.httpStatus = ERRORS[code].status;
    this.name = new.target.name;
  }
}

export { describeError } from '../actors/describe-error.js';

/** Whether `err` is a coded asyncfn error, typed as one (`instanceof` on the generic class gives `AsyncFnError<any>`). */
export function isAsyncFnError(err: unknown): err is AsyncFnError {
  return err instanceof AsyncFnError;
}

/**
 * An error class for `code` whose constructor takes the template's arguments, as `@fastify/error`'s
 * `createError(code, message, statusCode)` (code and status read from the table). Name the result
 * with a class declaration (`export class XError extends createError('…') {}`) so it keeps its name.
 */
export function createError<C extends ErrorCode>(code: C) {
  return class extends AsyncFnError<C> {
    constructor(...args: MessageArgs<C>) {
      super(code, args);
    }
  };
}

/** Startup configuration is invalid; the message lists every problem, one per line. */
export class ConfigError extends AsyncFnError<'ASYNCFN_ERR_CONFIG'> {
  constructor(
    readonly problems: readonly string[],
    opts?: ErrorOptions,
  ) {
    super('ASYNCFN_ERR_CONFIG', [problems.join('\n  - ')], opts);
  }
}

/** A request the gateway cannot read: no function name, a malformed header, a bad option. */
export class BadRequestError extends createError('ASYNCFN_ERR_BAD_REQUEST') {}
/** DELETE of a batch whose request is still being read: what it holds is not known yet. */
export class BatchUploadingError extends createError('ASYNCFN_ERR_BATCH_UPLOADING') {}
/** A browser sent a state-changing admin request for a page of another site (see src/gateway/auth/cross-site.ts). */
export class CrossSiteError extends createError('ASYNCFN_ERR_CROSS_SITE') {}

/** A function name in a route is not a valid name (or name.namespace). */
export class InvalidFunctionNameError extends AsyncFnError<'ASYNCFN_ERR_INVALID_FUNCTION_NAME'> {
  constructor(
    readonly functionName: string,
    opts?: ErrorOptions,
  ) {
    super('ASYNCFN_ERR_INVALID_FUNCTION_NAME', [functionName], opts);
  }
}

/** The function registry knows that no function of that name exists. */
export class FunctionNotFoundError extends AsyncFnError<'ASYNCFN_ERR_FUNCTION_NOT_FOUND'> {
  constructor(
    readonly functionName: string,
    opts?: ErrorOptions,
  ) {
    super('ASYNCFN_ERR_FUNCTION_NOT_FOUND', [functionName], opts);
  }
}

/**
 * A path suffix after `/function/<name>` or `/async-function/<name>` that could leave the
 * function's base URL (a dot segment, an encoded slash, a backslash, …) or is malformed.
 */
export class PathRefusedError extends AsyncFnError<'ASYNCFN_ERR_PATH_REFUSED'> {
  constructor(
    readonly reason: string,
    opts?: ErrorOptions,
  ) {
    super('ASYNCFN_ERR_PATH_REFUSED', [reason], opts);
  }
}

/** Missing or wrong credentials; the gateway adds `WWW-Authenticate`. */
export class UnauthorizedError extends createError('ASYNCFN_ERR_UNAUTHORIZED') {}
/** No route for a method and path (argument: "METHOD /path", or a hint after it). */
export class NoRouteError extends createError('ASYNCFN_ERR_NO_ROUTE') {}
/** `GET`/`DELETE /async-function/<call-id>`: no invocation has that call id. */
export class InvocationNotFoundError extends createError('ASYNCFN_ERR_INVOCATION_NOT_FOUND') {}
/** `DELETE /async-function/<call-id>`: it already finished (arguments: call id, state). */
export class InvocationFinishedError extends createError('ASYNCFN_ERR_INVOCATION_FINISHED') {}
/** A progress report whose URL asyncfn did not sign for this call id (the message says what is wrong). */
export class ProgressSignatureError extends createError('ASYNCFN_ERR_PROGRESS_SIGNATURE') {}
/** A progress report on a URL past its expiry (argument: the expiry, ISO time). */
export class ProgressExpiredError extends createError('ASYNCFN_ERR_PROGRESS_EXPIRED') {}
/** A progress report for an invocation that is final (arguments: call id, state). */
export class ProgressClosedError extends createError('ASYNCFN_ERR_PROGRESS_CLOSED') {}
/** `GET .../result`: no kept result; the message says why. */
export class NoResultError extends createError('ASYNCFN_ERR_NO_RESULT') {}
/** A method a route does not take; the message says which ones it does. */
export class MethodNotAllowedError extends createError('ASYNCFN_ERR_METHOD_NOT_ALLOWED') {}
/** The registry cannot list functions (URL template mode). */
export class CannotListError extends createError('ASYNCFN_ERR_CANNOT_LIST') {}
/** Sync call: the function could not be reached (arguments: function name, why). */
export class UpstreamUnreachableError extends createError('ASYNCFN_ERR_UPSTREAM_UNREACHABLE') {}
/** Sync call: no answer within `upstream_timeout` (arguments: function name, ms). */
export class UpstreamTimeoutError extends createError('ASYNCFN_ERR_UPSTREAM_TIMEOUT') {}
/** A request that arrived after SIGTERM: another replica can take it. */
export class ShuttingDownError extends createError('ASYNCFN_ERR_SHUTTING_DOWN') {}
/** Body over `max_body_size` (argument: the limit, bytes). */
export class BodyTooLargeError extends createError('ASYNCFN_ERR_BODY_TOO_LARGE') {}
/** Too many header fields or bytes of them; the message names the limit. */
/** A body above `max_large_body_size` (by its Content-Length, or as it streamed in). */
export class LargeBodyTooLargeError extends createError('ASYNCFN_ERR_LARGE_BODY_TOO_LARGE') {}

export class HeadersTooLargeError extends createError('ASYNCFN_ERR_HEADERS_TOO_LARGE') {}
/** The request did not arrive within `read_timeout`. */
export class RequestTimeoutError extends createError('ASYNCFN_ERR_REQUEST_TIMEOUT') {}
/** A bug: the gateway answers 500 and logs the real error. */
export class InternalError extends createError('ASYNCFN_ERR_INTERNAL') {}
/** `GET`/`DELETE /async-batch/<batch-id>`: no batch has that id. */
export class BatchNotFoundError extends createError('ASYNCFN_ERR_BATCH_NOT_FOUND') {}
/** `GET /system/dead-letters/<seq>`: no dead letter has that sequence (never stored, replayed or purged). */
export class DeadLetterNotFoundError extends createError('ASYNCFN_ERR_DEAD_LETTER_NOT_FOUND') {}
/** `POST /async-batch/<name>` with no item at all. */
export class BatchEmptyError extends createError('ASYNCFN_ERR_BATCH_EMPTY') {}

/**
 * A batch item that cannot be read or checked (invalid JSON, a field of the wrong type, a bad
 * header). `index` is the item's 0-based position, `line` the 1-based line it starts on.
 */
export class BatchItemInvalidError extends AsyncFnError<'ASYNCFN_ERR_BATCH_ITEM_INVALID'> {
  constructor(
    readonly index: number,
    readonly line: number,
    readonly reason: string,
  ) {
    super('ASYNCFN_ERR_BATCH_ITEM_INVALID', [index, line, reason]);
  }
}

/** A batch over `max_batch_items` or `max_batch_bytes`, or one item over `max_body_size`; same fields as {@link BatchItemInvalidError}. */
export class BatchTooLargeError extends AsyncFnError<'ASYNCFN_ERR_BATCH_TOO_LARGE'> {
  constructor(
    readonly index: number,
    readonly line: number,
    readonly reason: string,
  ) {
    super('ASYNCFN_ERR_BATCH_TOO_LARGE', [index, line, reason]);
  }
}
