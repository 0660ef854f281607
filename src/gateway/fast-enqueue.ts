/**
 * The common async request, answered on node:http without fastify: `POST /async-function/<name>`
 * with a Content-Length body a message can carry, no invoke auth, tracing off. It is the front
 * door's hot path, and fastify's request and reply objects, hooks and content-type parsing cost
 * about as much CPU per request as everything else the gateway does for it (BENCHMARKS.md,
 * "Gateway ingest"). Every other request, and this one whenever one of those conditions does not
 * hold, goes to fastify unchanged: the checks below are made on the request's head, before any of
 * its body is read, and the answer is built by the same functions as the fastify route's
 * (enqueue.ts, enqueue-http.ts, http-errors.ts), with the same metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { tracingActive, UNTRACED } from '../telemetry/spans.js';
import { enqueue, type EnqueuePorts } from './enqueue.js';
import { acceptedHeaderList, ASYNC_PREFIX, enqueueRequestOf, type EnqueueReadOptions } from './enqueue-http.js';
import { forwardedHeadersOf } from './forwarded-headers.js';
import { answerableError, writeError } from './http-errors.js';
import type { ResponseCounter } from './metrics-hooks.js';
import { progressTargetOf } from './progress-target.js';
import type { ProtocolState } from './protocol-refusals.js';

/** Takes a request and answers it (true), or leaves it to fastify (false) without touching it. */
export type RequestTaker = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface FastEnqueueDeps {
  readonly ports: EnqueuePorts;
  readonly read: EnqueueReadOptions;
  /** Largest body carried in the message, bytes (`max_body_size`): larger ones go to fastify (413, or the payload bucket). */
  readonly maxBodyBytes: number;
  /** `max_header_count`: a request with more fields goes to fastify, which refuses it. */
  readonly maxHeaderCount: number;
  /** Invoke auth is configured: its requests go through fastify's auth hook. */
  readonly invokeAuth: boolean;
  /** false while disconnected from NATS: fastify answers the 503. */
  readonly isReady: () => boolean;
  readonly protocol: ProtocolState;
  readonly count: ResponseCounter;
  readonly logger: Pick<Logger, 'warn' | 'error'>;
}

/** `http.route` of the async route, as fastify names it in metrics. */
const ROUTE = `${ASYNC_PREFIX}*`;
const DIGITS = /^\d{1,10}$/;

export function createFastEnqueue(deps: FastEnqueueDeps): RequestTaker {
  /** Whether this request is the common one; read from its head alone. */
  const takes = (req: IncomingMessage, url: string): boolean => {
    const { headers } = req;
    const length = headers['content-length'];
    return (
      length !== undefined &&
      DIGITS.test(length) &&
      Number(length) <= deps.maxBodyBytes &&
      headers['transfer-encoding'] === undefined &&
      (req.httpVersion !== '1.1' || headers.host !== undefined) &&
      req.rawHeaders.length / 2 <= deps.maxHeaderCount &&
      !deps.invokeAuth &&
      !deps.protocol.isClosing() &&
      deps.isReady() &&
      !tracingActive() &&
      progressTargetOf(url) === undefined
    );
  };

  const answer = async (req: IncomingMessage, res: ServerResponse, url: string, body: Uint8Array, startedAt: number): Promise<void> => {
    let status: number;
    let functionName: string | undefined;
    try {
      const request = enqueueRequestOf({ method: 'POST', url, headers: req.headers, forwarded: forwardedHeadersOf(req.headers, false) }, body, UNTRACED, deps.read);
      functionName = request.ref.name;
      const result = await enqueue(deps.ports, request);
      if (result.outcome === 'refused') {
        status = refuse(res, result.error, url);
      } else {
        const headers = acceptedHeaderList(result);
        headers.push('content-length', '0');
        res.writeHead(202, headers);
        res.end();
        status = 202;
      }
    } catch (err) {
      status = refuse(res, err, url);
    }
    deps.count(req as { method: string; url: string }, ROUTE, status, (performance.now() - startedAt) / 1000, functionName);
  };

  /** Answers as the gateway's error handler does (http-errors.ts); returns the status. */
  const refuse = (res: ServerResponse, err: unknown, url: string): number => {
    const error = answerableError(err, deps.logger, url);
    writeError(res, error);
    return error.httpStatus;
  };

  return (req, res) => {
    const { url } = req;
    if (req.method !== 'POST' || url === undefined || !url.startsWith(ASYNC_PREFIX) || !takes(req, url)) return false;
    const startedAt = performance.now();
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    });
    // node's parser ends the body at Content-Length; a caller gone before that is an 'error' ('aborted'): nobody to answer.
    req.on('error', () => res.destroy());
    req.on('end', () => {
      // A copy, never a view over the socket's read buffer (as the fastify route's parser does).
      answer(req, res, url, Buffer.concat(chunks, received), startedAt).catch((err: unknown) => deps.logger.error({ err, url }, 'unhandled gateway error'));
    });
    return true;
  };
}
