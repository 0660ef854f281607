import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { BodyTooLargeError, codeForStatus, InternalError, isAsyncFnError, NoRouteError, type AsyncFnError, type ErrorCode } from '../errors.js';

/** Seconds a client should wait before retrying a 503 (NATS reconnects every 500 ms). */
export const RETRY_AFTER_SECONDS = 1;

/** The one line of text of a refusal: line breaks inside the reason become "; ". */
export function oneLine(reason: string): string {
  return `${reason.replace(/\s*[\r\n]\s*/g, '; ')}\n`;
}

/**
 * Answers with a coded error: its status, its message as one line of plain text, its code in
 * X-Asyncfn-Error (and Retry-After on a 503). Routes and hooks answer refusals with this (a thrown
 * error goes through the same function, by the error handler).
 */
export function sendError(reply: FastifyReply, error: AsyncFnError): FastifyReply {
  return sendRefusal(reply, error.httpStatus, error.message, error.code);
}

/**
 * The one shape of every error response, for refusals whose words are not an asyncfn error's
 * message (fastify's own 4xx, the health probe).
 */
export function sendRefusal(reply: FastifyReply, status: number, reason: string, code: ErrorCode): FastifyReply {
  if (status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  reply.header('x-asyncfn-error', code);
  return reply.code(status).type('text/plain; charset=utf-8').send(oneLine(reason));
}

export { codeForStatus };

/** What a response is written with when fastify is not in the way: node's ServerResponse, or the front door's connection. */
export interface ResponseWriter {
  writeHead(status: number, headers: Record<string, string | number> | string[]): unknown;
  end(body?: string): unknown;
}

/**
 * {@link sendError} for a response written without fastify (fast-enqueue.ts): the same status,
 * headers and body, on a connection that stays open.
 */
export function writeError(res: ResponseWriter, error: AsyncFnError): void {
  const body = oneLine(error.message);
  const headers: Record<string, string | number> = {
    'x-asyncfn-error': error.code,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  };
  if (error.httpStatus === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS);
  res.writeHead(error.httpStatus, headers);
  res.end(body);
}

/**
 * A refusal written straight to a socket, in the same shape as {@link sendError}, for requests
 * that never become a fastify request (node's parser refused them, CONNECT); then the socket is
 * closed, since what follows on it cannot be trusted to be a request.
 */
export function writeRawRefusal(socket: Duplex, status: number, reason: string, code: ErrorCode, cause?: Error): void {
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

/** {@link writeRawRefusal} of a coded error. */
export function writeRawError(socket: Duplex, error: AsyncFnError, cause?: Error): void {
  writeRawRefusal(socket, error.httpStatus, error.message, error.code, cause);
}

/**
 * The coded error a failure is answered with: a coded error as it is (logged as a warning when it
 * is a 5xx), anything else a 500 (logged as an error: it is a bug). The error handler below and
 * the plain request path (fast-enqueue.ts) both answer through it.
 */
export function answerableError(err: unknown, logger: Pick<Logger, 'warn' | 'error'>, url: string): AsyncFnError {
  if (isAsyncFnError(err)) {
    if (err.httpStatus >= 500) logger.warn({ err, url }, err.message);
    return err;
  }
  logger.error({ err, url }, 'unhandled gateway error');
  return new InternalError();
}

/** One error handler for the gateway: coded asyncfn errors, fastify's own 4xx, anything else a 500. */
export function installErrorHandlers(app: FastifyInstance, logger: Logger, maxBodyBytes: number): void {
  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (!isAsyncFnError(error)) {
      const fastifyError = error as FastifyError;
      if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        return sendError(reply, new BodyTooLargeError(maxBodyBytes));
      }
      const status = fastifyError.statusCode;
      if (status !== undefined && status >= 400 && status < 500) return sendRefusal(reply, status, fastifyError.message, codeForStatus(status));
    }
    return sendError(reply, answerableError(error, logger, request.url));
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new NoRouteError(`${request.method} ${request.url.split('?')[0]}`)));
}
