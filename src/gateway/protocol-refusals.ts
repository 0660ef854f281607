/**
 * Refusals that node's HTTP server or fastify would otherwise make on their own, each in the
 * gateway's one shape (status, one line of text, `X-Asyncfn-Error`): CONNECT, HTTP/1.1 without
 * Host, an unmet `Expect`, a URL fastify's router cannot decode, and requests during shutdown.
 * Node's parser errors are answered by the client-error handler (header-limits.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { pathSuffixProblem } from '../functions/index.js';
import { BadRequestError, MethodNotAllowedError, PathRefusedError, ShuttingDownError } from '../errors.js';
import { codeForStatus, oneLine, sendError, sendRefusal, writeRawError } from './http-errors.js';

/**
 * Server options these refusals need: node must not answer a missing Host itself (it would send
 * an empty 400), fastify must not answer bad URLs and shutdown itself (it would send JSON).
 */
export const PROTOCOL_SERVER_OPTIONS = Object.freeze({
  requireHostHeader: false,
  return503OnClosing: false,
  frameworkErrors: answerFrameworkError,
});

/**
 * fastify's own refusals before routing: FST_ERR_BAD_URL (the router cannot percent-decode the
 * path, e.g. `%zz` or `%ff`) and the like. A bad path is named the way a refused path suffix is.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  if (error.code === 'FST_ERR_BAD_URL') {
    const pathname = (request.raw.url ?? '').split('?')[0]!;
    const problem = pathSuffixProblem(pathname);
    if (problem !== undefined) {
      sendError(reply, new PathRefusedError(problem));
      return;
    }
    sendError(reply, new BadRequestError('the URL path is not valid percent-encoded UTF-8'));
    return;
  }
  sendRefusal(reply, status, error.message, codeForStatus(status));
}

/** What the refusals know that the gateway's plain request path (fast-enqueue.ts) asks too. */
export interface ProtocolState {
  /** True once the server began closing: every request is refused with 503. */
  isClosing(): boolean;
}

/** Installs the refusals; call before any other hook so they run first. */
export function installProtocolRefusals(app: FastifyInstance): ProtocolState {
  // Node closes a CONNECT without a word when nobody listens for it.
  app.server.on('connect', (_req: IncomingMessage, socket: Duplex) =>
    writeRawError(socket, new MethodNotAllowedError('method CONNECT not allowed: the gateway is not a proxy')),
  );
  // Node answers an Expect other than 100-continue with an empty 417 unless someone listens.
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const body = oneLine(
      `cannot meet Expect: ${String(req.headers.expect)
        .replace(/[^\x20-\x7e]/g, '')
        .slice(0, 60)}; only 100-continue is supported`,
    );
    res.writeHead(417, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-asyncfn-error': codeForStatus(417),
      connection: 'close',
    });
    res.end(body);
  });

  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  // Callback hooks, here and for the other per-request checks: an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    if (closing) {
      // Another replica can take it: 503 with Retry-After, like a NATS outage.
      sendError(reply.header('connection', 'close'), new ShuttingDownError());
      return;
    }
    // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host.
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      sendError(reply.header('connection', 'close'), new BadRequestError('an HTTP/1.1 request must carry a Host header'));
      return;
    }
    done();
  });
  return { isClosing: () => closing };
}
