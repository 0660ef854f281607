import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { AsyncFnError } from '../errors.js';

/** Seconds a client should wait before retrying a 503 (NATS reconnects every 500 ms). */
export const RETRY_AFTER_SECONDS = 1;

/** The one line of text of a refusal: line breaks inside the reason become "; ". */
export function oneLine(reason: string): string {
  return `${reason.replace(/\s*[\r\n]\s*/g, '; ')}\n`;
}

/** Answers with the status and a one-line plain-text reason; every error response goes through here. */
export function sendError(reply: FastifyReply, status: number, reason: string, code: string): FastifyReply {
  if (status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  reply.header('x-asyncfn-error', code);
  return reply.code(status).type('text/plain; charset=utf-8').send(oneLine(reason));
}

/**
 * The code of a refusal that node or fastify made on their own (no asyncfn error behind it),
 * by status: the X-Asyncfn-Error every refusal carries.
 */
export function codeForStatus(status: number): `ASYNCFN_ERR_${string}` {
  switch (status) {
    case 404:
      return 'ASYNCFN_ERR_NO_ROUTE';
    case 405:
      return 'ASYNCFN_ERR_METHOD_NOT_ALLOWED';
    case 408:
      return 'ASYNCFN_ERR_REQUEST_TIMEOUT';
    case 413:
      return 'ASYNCFN_ERR_BODY_TOO_LARGE';
    case 415:
      return 'ASYNCFN_ERR_UNSUPPORTED_MEDIA_TYPE';
    case 431:
      return 'ASYNCFN_ERR_HEADERS_TOO_LARGE';
    default:
      return 'ASYNCFN_ERR_BAD_REQUEST';
  }
}

/**
 * A refusal written straight to a socket, in the same shape as {@link sendError}, for requests
 * that never become a fastify request (node's parser refused them, CONNECT); then the socket is
 * closed, since what follows on it cannot be trusted to be a request.
 */
export function writeRawRefusal(socket: Duplex, status: number, reason: string, code: string, cause?: Error): void {
  if (socket.writable && !socket.destroyed) {
    const body = oneLine(reason);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Asyncfn-Error: ${code}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(cause);
}

/** One error handler for the gateway: coded asyncfn errors, fastify's own 4xx, anything else a 500. */
export function installErrorHandlers(app: FastifyInstance, logger: Logger, maxBodyBytes: number): void {
  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (error instanceof AsyncFnError) {
      if (error.httpStatus >= 500) logger.warn({ err: error, url: request.url }, error.message);
      return sendError(reply, error.httpStatus, error.message, error.code);
    }
    const fastifyError = error as FastifyError;
    if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, 413, `request body exceeds the ${maxBodyBytes}-byte limit (max_body_size)`, 'ASYNCFN_ERR_BODY_TOO_LARGE');
    }
    const status = fastifyError.statusCode;
    if (status !== undefined && status >= 400 && status < 500) return sendError(reply, status, fastifyError.message, codeForStatus(status));
    logger.error({ err: error, url: request.url }, 'unhandled gateway error');
    return sendError(reply, 500, 'internal error', 'ASYNCFN_ERR_INTERNAL');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, `no route for ${request.method} ${request.url.split('?')[0]}`, 'ASYNCFN_ERR_NO_ROUTE'),
  );
}
