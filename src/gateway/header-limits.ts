import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { BadRequestError, HeadersTooLargeError, RequestTimeoutError, type AsyncFnError } from '../errors.js';
import { sendError, writeRawError } from './http-errors.js';

/** Limits on a request's headers (`max_header_count`, `max_header_size`). */
export interface HeaderLimits {
  /** Most header fields one request may carry. Default 100. */
  readonly maxHeaderCount: number;
  /** Largest size of the request line plus headers, bytes. Default 16384 (16 KiB), node's own default. */
  readonly maxHeaderBytes: number;
}

export const DEFAULT_HEADER_LIMITS: HeaderLimits = Object.freeze({ maxHeaderCount: 100, maxHeaderBytes: 16_384 });

/** node:http's socket, with the response it is writing now (node's own field, unchanged since node 0.x). */
type ServerSocket = Socket & { _httpMessage?: ServerResponse | null };

/** Sockets whose refusal waits for the answer before it (see below): node's parser reports each later read again. */
const refusalsWaiting = new WeakSet<Socket>();

/**
 * Server options enforcing the size limit. Node's parser counts the bytes itself and fails the
 * request before fastify sees it, so the 431 is written to the socket by the client-error handler,
 * in the gateway's usual one-line format (fastify's default would answer JSON).
 *
 * The bytes node's parser refuses may follow a whole request on the same connection (pipelined,
 * or after `Connection: close`) that is still being answered: that request is enqueued all the
 * same, so its answer goes out first and the refusal after it, in order (RFC 9112 §9.3.2). Were the
 * refusal written at once, in its place, a caller told 400 would send again a request that runs.
 */
export function headerLimitServerOptions(limits: HeaderLimits) {
  return {
    http: { maxHeaderSize: limits.maxHeaderBytes },
    clientErrorHandler: (err: Error & { code?: string; reason?: string }, socket: Socket): void => {
      if (err.code === 'ECONNRESET' || socket.destroyed || refusalsWaiting.has(socket)) return;
      const refusal: AsyncFnError =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? new HeadersTooLargeError(`request headers exceed the ${limits.maxHeaderBytes}-byte limit (max_header_size)`)
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? new RequestTimeoutError()
            : new BadRequestError(malformed(err));
      const answering = (socket as ServerSocket)._httpMessage;
      // A request read whole and not answered yet; one cut short by the error is not answered at all.
      if (answering && !answering.writableEnded && answering.req.complete && err.code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
        refusalsWaiting.add(socket);
        // After the answer: the refusal, if the answer left the connection open (a `Connection: close` closed it).
        answering.once('close', () => writeRawError(socket, refusal, err));
        return;
      }
      writeRawError(socket, refusal, err);
    },
  };
}

/** "malformed HTTP request", with llhttp's own words for what was wrong when it gives them. */
function malformed(err: { reason?: string }): string {
  const why = typeof err.reason === 'string' ? err.reason.replace(/[^\x20-\x7e]/g, '').slice(0, 100) : '';
  return why === '' ? 'malformed HTTP request' : `malformed HTTP request: ${why}`;
}

/**
 * Refuses requests with more than `maxHeaderCount` header fields. Node does not refuse them: it
 * silently drops every field past `server.maxHeadersCount` (default 2000). So that limit is set one
 * above ours, and a request that reaches it has too many fields; this runs before auth and routes.
 */
export function installHeaderCountLimit(app: FastifyInstance, limits: HeaderLimits): void {
  app.server.maxHeadersCount = limits.maxHeaderCount + 1;
  app.addHook('onRequest', (request, reply, done) => {
    const count = request.raw.rawHeaders.length / 2;
    if (count <= limits.maxHeaderCount) return done();
    // The connection may hold more of this request (its body): close it rather than read it.
    reply.header('connection', 'close');
    sendError(reply, new HeadersTooLargeError(`request has more than ${limits.maxHeaderCount} header fields (max_header_count)`));
  });
}
