/**
 * Every error asyncfn raises on purpose carries a stable code and the HTTP status the gateway
 * answers with. The gateway's single error handler maps these; anything else is a 500.
 */
export abstract class AsyncFnError extends Error {
  abstract readonly code: `ASYNCFN_ERR_${string}`;
  readonly httpStatus: number = 500;
}

/** Startup configuration is invalid; the message lists every problem, one per line. */
export class ConfigError extends AsyncFnError {
  readonly code = 'ASYNCFN_ERR_CONFIG';
  constructor(readonly problems: readonly string[], opts?: ErrorOptions) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`, opts);
    this.name = 'ConfigError';
  }
}

/** A function name in a route is not a valid name (or name.namespace). */
export class InvalidFunctionNameError extends AsyncFnError {
  readonly code = 'ASYNCFN_ERR_INVALID_FUNCTION_NAME';
  override readonly httpStatus = 400;
  constructor(readonly functionName: string, opts?: ErrorOptions) {
    super(`invalid function name "${functionName}": expected a DNS-1123 label, optionally followed by .namespace`, opts);
    this.name = 'InvalidFunctionNameError';
  }
}

/** The function registry knows that no function of that name exists. */
export class FunctionNotFoundError extends AsyncFnError {
  readonly code = 'ASYNCFN_ERR_FUNCTION_NOT_FOUND';
  override readonly httpStatus = 404;
  constructor(readonly functionName: string, opts?: ErrorOptions) {
    super(`function "${functionName}" not found`, opts);
    this.name = 'FunctionNotFoundError';
  }
}

/**
 * A path suffix after `/function/<name>` or `/async-function/<name>` that could leave the
 * function's base URL (a dot segment, an encoded slash, a backslash, …) or is malformed.
 */
export class PathRefusedError extends AsyncFnError {
  readonly code = 'ASYNCFN_ERR_PATH_REFUSED';
  override readonly httpStatus = 400;
  constructor(readonly reason: string, opts?: ErrorOptions) {
    super(`path refused: ${reason}`, opts);
    this.name = 'PathRefusedError';
  }
}
