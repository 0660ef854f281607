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
import { enqueue, startedBy, type EnqueuePorts, type EnqueueRequest, type EnqueueResult } from './enqueue.js';
import { acceptedHeaderList, ASYNC_PREFIX, enqueueRequestOf, type EnqueueReadOptions } from './enqueue-http.js';
import { forwardedHeadersOf } from './forwarded-headers.js';
import { answerableError, writeError, type ResponseWriter } from './http-errors.js';
import type { ResponseCounter } from './metrics-hooks.js';
import { progressTargetOf } from './progress-target.js';
import type { ProtocolState } from './protocol-refusals.js';

/** Takes a request and answers it (true), or leaves it to fastify (false) without touching it. */
export type RequestTaker = (req: IncomingMessage, res: ServerResponse) => boolean;

/** What the common request is recognised and enqueued by: its head, as node's IncomingMessage shows it. */
export type RequestHead = Pick<IncomingMessage, 'method' | 'url' | 'headers' | 'rawHeaders' | 'httpVersion'>;

/**
 * The taker for node:http, and its two halves for the gateway's front door (front-door.ts), which
 * reads the request itself: whether a head is the common request's, and the answer once its whole
 * body is in.
 */
export interface FastEnqueue extends RequestTaker {
  /** Whether the request of this head is taken; asked before any of its body is read. */
  accepts(head: RequestHead): boolean;
  /** Enqueues the accepted request with its whole body and answers it on `res`; never rejects. `head` is read before it returns. */
  answer(head: RequestHead, body: Uint8Array, res: ResponseWriter, startedAt: number): Promise<void>;
}

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

export function createFastEnqueue(deps: FastEnqueueDeps): FastEnqueue {
  /** Whether this request is the common one; read from its head alone. */
  const accepts = (req: RequestHead): boolean => {
    const { headers, url } = req;
    if (req.method !== 'POST' || url === undefined || !url.startsWith(ASYNC_PREFIX)) return false;
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

  /**
   * Not an async function: while the PubAck is awaited, this answer holds only what it needs (the
   * writer, the URL, the start and the function's name), not the request's head and its headers,
   * which young collections would otherwise copy for every request in flight (BENCHMARKS.md, "What a
   * request in flight holds").
   */
  const enqueueAndAnswer = (req: RequestHead, body: Uint8Array, res: ResponseWriter, startedAt: number): Promise<void> => {
    const url = req.url!;
    let request: EnqueueRequest;
    try {
      request = enqueueRequestOf({ method: 'POST', url, headers: req.headers, forwarded: forwardedHeadersOf(req.headers, false) }, body, UNTRACED, deps.read);
    } catch (err) {
      counted(url, refuse(res, err, url), startedAt, undefined);
      return Promise.resolve();
    }
    const functionName = request.ref.name;
    return enqueue(deps.ports, request).then(
      (result) => counted(url, answerWith(res, result, url), startedAt, startedBy(result) ? functionName : undefined),
      (err: unknown) => counted(url, refuse(res, err, url), startedAt, undefined),
    );
  };

  /** Answers `result`: a 202 for an accepted (or repeated) invocation, else the refusal; returns the status. */
  const answerWith = (res: ResponseWriter, result: EnqueueResult, url: string): number => {
    try {
      if (result.outcome === 'refused') return refuse(res, result.error, url);
      const headers = acceptedHeaderList(result);
      headers.push('content-length', '0');
      res.writeHead(202, headers);
      res.end();
      return 202;
    } catch (err) {
      return refuse(res, err, url);
    }
  };

  /** The answer's metrics, as fastify's hooks count the route's. */
  const counted = (url: string, status: number, startedAt: number, functionName: string | undefined): void => {
    deps.count({ method: 'POST', url }, ROUTE, status, (performance.now() - startedAt) / 1000, functionName);
  };

  /** Answers as the gateway's error handler does (http-errors.ts); returns the status. */
  const refuse = (res: ResponseWriter, err: unknown, url: string): number => {
    const error = answerableError(err, deps.logger, url);
    writeError(res, error);
    return error.httpStatus;
  };

  const answer = (req: RequestHead, body: Uint8Array, res: ResponseWriter, startedAt: number): Promise<void> => {
    const { url } = req;
    return enqueueAndAnswer(req, body, res, startedAt).catch((err: unknown) => deps.logger.error({ err, url }, 'unhandled gateway error'));
  };

  const take: RequestTaker = (req, res) => {
    if (!accepts(req)) return false;
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
      void answer(req, Buffer.concat(chunks, received), res, startedAt);
    });
    return true;
  };
  return Object.assign(take, { accepts, answer });
}
