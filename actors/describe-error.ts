/**
 * A thrown value as one line for logs, records and error messages: an `Error`'s message, anything
 * else as `String()` prints it. It lives in actors/ because actors import nothing from src/; src/
 * takes it from `src/errors.ts`. Callers that know better words for some errors (a timeout, no
 * responders) check those first and fall back to this.
 */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
