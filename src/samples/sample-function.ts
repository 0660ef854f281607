/**
 * The shape every sample function has. The server reads the body (with the function's cap),
 * parses the route and passes an abort signal; a function only maps a request to a response,
 * which keeps each one a few lines long.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** What a sample function sees of a request. */
export interface SampleRequest {
  readonly method: string;
  /** Path after the function name: "" or "/…", as received (still percent-encoded). */
  readonly pathSuffix: string;
  /** Raw query string without '?', "" when absent. */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  /** The whole request body, at most the function's `maxBodyBytes`. */
  readonly body: Buffer;
  /** Aborted when the client disconnects, so timers can stop. */
  readonly signal: AbortSignal;
}

/** What a sample function answers. */
export interface SampleResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
}

/** One sample function, routed by the server under `/<name>`. */
export interface SampleFunction {
  readonly name: string;
  /** Largest request body accepted, in bytes; a larger one gets 413. */
  readonly maxBodyBytes: number;
  handle(req: SampleRequest): Promise<SampleResponse>;
}

/** A `text/plain` response; `text` should end with a newline, as curl users expect. */
export function textResponse(status: number, text: string): SampleResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: text };
}

/** The first value of a query parameter, or undefined. */
export function queryParam(query: string, name: string): string | undefined {
  return new URLSearchParams(query).get(name) ?? undefined;
}
