import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { AsyncFnError } from '../errors.js';

/** Seconds a client should wait before retrying a 503 (NATS reconnects every 500 ms). */
export const RETRY_AFTER_SECONDS = 1;

/** Answers with the status and a one-line plain-text reason; every error response goes through here. */
export function sendError(reply: FastifyReply, status: number, reason: string, code?: string): FastifyReply {
  if (status === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  if (code) reply.header('x-asyncfn-error', code);
  return reply
    .code(status)
    .type('text/plain; charset=utf-8')
    .send(`${reason.replace(/\s*\n\s*/g, '; ')}\n`);
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
    if (status !== undefined && status >= 400 && status < 500) return sendError(reply, status, fastifyError.message);
    logger.error({ err: error, url: request.url }, 'unhandled gateway error');
    return sendError(reply, 500, 'internal error', 'ASYNCFN_ERR_INTERNAL');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, `no route for ${request.method} ${request.url.split('?')[0]}`, 'ASYNCFN_ERR_NO_ROUTE'),
  );
}
