import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { parseDurationMs } from '../../config/duration.js';
import { parseFunctionRef, type FunctionResolver } from '../../functions/index.js';
import { confirmWithin, deadlineAfter } from '../../queue/deadline.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import { unavailableOnFailure } from './async-function.js';
import type { RecordStore } from '../../status/records.js';
import type { ResultStore } from '../../status/results.js';
import { isRecordKey } from '../../status/wait.js';
import { BadRequestError, InvocationNotFoundError, MethodNotAllowedError, NoResultError, NoRouteError } from '../../errors.js';
import { sendError } from '../http-errors.js';
import { parseInvocationTarget } from '../invocation-target.js';

export interface InvocationStatusDeps {
  readonly records: RecordStore;
  readonly results: ResultStore;
  readonly resolver: FunctionResolver;
  readonly defaultNamespace: string;
  readonly isReady: () => boolean;
  /** Longest wait for a record or result read, ms (`publish_timeout`); then 503 with Retry-After. */
  readonly publishTimeoutMs: number;
}

const PREFIX = '/async-function/';
/** The longest `?wait=` honoured; a longer one is cut to this (proxies rarely keep a request open longer). */
export const MAX_WAIT_MS = 5 * 60_000;

/**
 * A kept result is the function's bytes, under the function's content type, served from the
 * gateway's own origin, where the web console and the operators' credentials live: it is served
 * inert. A sandboxed document (no `allow-scripts`, no `allow-same-origin`) runs no script and has an
 * opaque origin of its own, so an HTML result cannot act as the console's user; `nosniff` keeps a
 * browser from reading another type into it.
 */
export const INERT_RESULT_HEADERS = Object.freeze({
  'content-security-policy': "sandbox; default-src 'none'",
  'x-content-type-options': 'nosniff',
});

/**
 * `GET /async-function/<call-id>[?wait=30s]`: the invocation record as JSON, after waiting (a KV
 * watch) until it is final when `wait` is given. `GET /async-function/<call-id>/result`: the kept
 * result with the function's status and content type.
 *
 * A GET on a function's name is what OpenFaaS answers 405 to, and so do we when no invocation has
 * that call id; an unknown name that is no function either is a 404.
 */
export async function invocationStatusRoutes(app: FastifyInstance, deps: InvocationStatusDeps): Promise<void> {
  const notFound = async (reply: FastifyReply, callId: string): Promise<FastifyReply> => {
    const fn = await Promise.resolve()
      .then(() => deps.resolver.resolve(parseFunctionRef(callId, deps.defaultNamespace)))
      .catch(() => undefined);
    if (fn) {
      const reason = `method GET not allowed on /async-function/${callId}: POST invokes it; GET /async-function/<call-id> reads an invocation`;
      return sendError(reply.header('allow', 'GET, POST, DELETE'), new MethodNotAllowedError(reason));
    }
    return sendError(reply, new InvocationNotFoundError(callId));
  };

  app.get(`${PREFIX}*`, async (request, reply) => {
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
    const target = parseInvocationTarget(request.raw.url ?? request.url, PREFIX);
    const callId = target.name;
    const wantsResult = target.path === '/result';
    if (target.path !== '' && !wantsResult) {
      return sendError(reply, new NoRouteError(`GET ${PREFIX}${callId}${target.path}: try ${PREFIX}${callId}/result`));
    }
    if (!isRecordKey(callId)) return notFound(reply, callId);
    const deadline = deadlineAfter(deps.publishTimeoutMs, performance.now());

    if (wantsResult) {
      const record = await confirmWithin('the record read', deadline, () => deps.records.get(callId));
      if (!record) return notFound(reply, callId);
      if (!record.result) {
        const why = record.finishedAtMs === undefined ? `it has not finished (${record.state})` : 'keeping it was not asked (X-Store-Result: true)';
        return sendError(reply, new NoResultError(`invocation "${callId}" has no result: ${why}`));
      }
      if (!record.result.stored) {
        return sendError(reply, new NoResultError(`the result of "${callId}" was not kept: ${record.result.reason ?? 'unknown reason'}`));
      }
      const body = await confirmWithin('the result read', deadline, () => deps.results.get(callId));
      if (!body) return sendError(reply, new NoResultError(`the result of "${callId}" has expired`));
      reply.code(record.result.status).header('x-call-id', callId).headers(INERT_RESULT_HEADERS);
      if (record.result.contentType) reply.type(record.result.contentType);
      if (record.result.contentEncoding) reply.header('content-encoding', record.result.contentEncoding);
      if ('chunks' in body) {
        // A large result streams from the payload bucket a chunk at a time, as the client reads it.
        return reply.header('content-length', String(body.size)).send(Readable.from(body.chunks, { objectMode: false }));
      }
      const bytes = body.bytes;
      return reply.send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }

    const waitMs = waitFrom((request.query as Record<string, unknown>).wait);
    let record;
    if (waitMs === undefined) {
      record = await confirmWithin('the record read', deadline, () => deps.records.get(callId));
    } else {
      // The client leaving ends the wait (and its KV watch).
      const gone = new AbortController();
      const onClose = (): void => gone.abort();
      reply.raw.once('close', onClose);
      try {
        // No deadline but the wait itself: its first read is bounded by the NATS request timeout.
        record = await unavailableOnFailure(() => deps.records.waitForFinal(callId, waitMs, gone.signal));
      } catch (err) {
        // Nobody is listening any more: no error to report, nothing to log.
        if (gone.signal.aborted) return reply.code(499).send();
        throw err;
      } finally {
        reply.raw.off('close', onClose);
      }
    }
    if (!record) return notFound(reply, callId);
    return reply.code(200).header('x-call-id', callId).header('cache-control', 'no-store').send(record);
  });
}

/** `?wait=`: a duration (30s, 1m, 500ms, bare seconds), capped at MAX_WAIT_MS; absent = no wait. */
export function waitFrom(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const ms = typeof value === 'string' ? parseDurationMs(value) : undefined;
  if (ms === undefined) throw new BadRequestError('wait must be a duration, e.g. ?wait=30s');
  return Math.min(ms, MAX_WAIT_MS);
}
