import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError, BatchNotFoundError, BatchUploadingError, MethodNotAllowedError, createError, type AsyncFnError } from '../../errors.js';
import { parseFunctionRef } from '../../functions/index.js';
import { completeBatchIfDone, type BatchCompletionPorts } from '../../callback/batch-done.js';
import { readBatchCounts, readBatchFailures } from '../../queue/batch-events.js';
import { BATCH_ID } from '../../queue/envelope.js';
import { confirmWithin, deadlineAfter } from '../../queue/deadline.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import { batchCallId, batchStatusOf, type BatchRecord, type BatchStore } from '../../status/batches.js';
import type { CancellationRequests } from '../../status/cancellations.js';
import { callerTraceCarrier } from '../../telemetry/spans.js';
import { sendError } from '../http-errors.js';
import { callbackUrlFrom, parseInvocationTarget } from '../invocation-target.js';
import { idempotencyKeyFrom } from '../request-options.js';
import { itemTextLimit, parseBatchItem, splitBatchItems, type BatchFormat, type BatchItem } from '../batch-items.js';
import { isItemError, submitBatch, type BatchPorts, type BatchResult } from '../batch-submit.js';
import { unavailableOnFailure } from './async-function.js';
import { waitFrom } from './invocation-status.js';
import { callerGone } from '../../http/caller-gone.js';

/** A request body that is neither NDJSON nor JSON. */
class UnsupportedBatchTypeError extends createError('ASYNCFN_ERR_UNSUPPORTED_MEDIA_TYPE') {}

export interface AsyncBatchRouteDeps extends Omit<BatchPorts, 'newBatchId'> {
  readonly jsm: JetStreamManager;
  readonly batches: BatchStore;
  readonly completion: BatchCompletionPorts;
  readonly cancellations: CancellationRequests;
  readonly defaultNamespace: string;
  readonly isReady: () => boolean;
  /** Largest body of one item, bytes (`max_body_size`). */
  readonly maxBodyBytes: number;
  /** `max_batch_items`, `max_batch_bytes`. */
  readonly maxBatchItems: number;
  readonly maxBatchBytes: number;
  readonly now: () => number;
}

const PREFIX = '/async-batch/';
/** Failures listed per status page unless `?limit=` says otherwise, and the most it may ask. */
const DEFAULT_FAILURE_PAGE = 100;
const MAX_FAILURE_PAGE = 1_000;
/** Cancellation markers written at once by a DELETE. */
const CANCEL_WINDOW = 256;

/** The format of a batch body by its Content-Type; undefined for any other type. */
export function batchFormatOf(contentType: string | undefined): BatchFormat | undefined {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-ndjson' || type === 'application/ndjson' || type === 'application/jsonl' || type === 'application/x-jsonlines') return 'ndjson';
  if (type === 'application/json') return 'json';
  return undefined;
}

/**
 * `POST /async-batch/<name>`: one invocation per item, read and stored as the body streams in (see
 * batch-submit.ts); `GET /async-batch/<batch-id>`: the batch's counts and failures;
 * `DELETE /async-batch/<batch-id>`: cancels its items that have not ended.
 */
export async function asyncBatchRoutes(app: FastifyInstance, deps: AsyncBatchRouteDeps): Promise<void> {
  // The body is read by the route as a stream, item by item: never buffered whole.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  const requireQueue = (): void => {
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
  };
  const ports: BatchPorts = { ...deps, newBatchId: randomUUID };
  const maxItemBytes = itemTextLimit(deps.maxBodyBytes);

  app.post(`${PREFIX}*`, async (request, reply) => {
    requireQueue();
    const target = parseInvocationTarget(request.raw.url ?? request.url, PREFIX);
    if (target.path !== '') throw new BadRequestError('a batch names only its function: each item carries its own "path"');
    const format = batchFormatOf(request.headers['content-type']);
    if (!format) throw new UnsupportedBatchTypeError('a batch is application/x-ndjson (one item per line) or application/json (an array of items)');
    const ref = parseFunctionRef(target.name, deps.defaultNamespace);
    const callbackUrl = callbackUrlFrom(request.headers['x-callback-url']);
    const idempotencyKey = idempotencyKeyFrom(request.headers['idempotency-key']);
    const trace = callerTraceCarrier(request.headers);
    const body = (request.body as Readable | undefined) ?? request.raw;
    const items = checkedItems(splitBatchItems(body, format, { maxItems: deps.maxBatchItems, maxBytes: deps.maxBatchBytes, maxItemBytes }), deps.maxBodyBytes);
    const result = await submitBatch(
      ports,
      {
        ref,
        rawName: target.name,
        callbackUrl,
        idempotencyKey,
        enqueuedAtMs: deps.now(),
        traceparent: trace?.traceparent,
        tracestate: trace?.tracestate,
        clientGone: () => callerGone(request.raw),
      },
      items,
    );
    return answer(request, reply, result);
  });

  app.get(`${PREFIX}*`, async (request, reply) => {
    requireQueue();
    const batchId = batchIdOf(request);
    const query = request.query as Record<string, unknown>;
    const waitMs = waitFrom(query.wait);
    const limit = pageLimitOf(query.limit);
    const cursor = cursorOf(query.cursor);
    const deadline = deadlineAfter(deps.publishTimeoutMs, performance.now());
    let record = await confirmWithin('the batch record', deadline, () => deps.batches.get(batchId));
    if (!record) return sendError(reply, new BatchNotFoundError(batchId));
    // A batch whose last item ended before it was accepted, or whose completer died: completed here.
    if (record.state === 'accepted') {
      const known = record;
      if ((await confirmWithin('the batch completion', deadline, () => completeBatchIfDone(deps.completion, batchId, known))) === 'completed') {
        deps.metrics.completed.inc({ function_name: deps.metrics.functionLabel(record.function) });
        record = (await deps.batches.get(batchId)) ?? record;
      }
    }
    if (waitMs !== undefined && record.state !== 'done') {
      const gone = new AbortController();
      const onClose = (): void => gone.abort();
      reply.raw.once('close', onClose);
      try {
        record = (await unavailableOnFailure(() => deps.batches.waitUntilDone(batchId, waitMs, gone.signal))) ?? record;
      } catch (err) {
        if (gone.signal.aborted) return reply.code(499).send();
        throw err;
      } finally {
        reply.raw.off('close', onClose);
      }
    }
    const after = deadlineAfter(deps.publishTimeoutMs, performance.now());
    const counts = await confirmWithin('the batch counts', after, () => readBatchCounts(deps.jsm, batchId));
    const failures = await confirmWithin('the batch failures', after, () => readBatchFailures(deps.jsm, batchId, cursor, limit));
    return reply
      .code(200)
      .header('x-batch-id', batchId)
      .header('cache-control', 'no-store')
      .send({ ...batchStatusOf(record, counts), failed: failures.items, ...(failures.nextCursor === undefined ? {} : { nextCursor: String(failures.nextCursor) }) });
  });

  app.delete(`${PREFIX}*`, async (request, reply) => {
    requireQueue();
    const batchId = batchIdOf(request);
    const deadline = deadlineAfter(deps.publishTimeoutMs, performance.now());
    const record = await confirmWithin('the batch record', deadline, () => deps.batches.get(batchId));
    if (!record) return sendError(reply, new BatchNotFoundError(batchId));
    // Its items are being stored as they are read, and the record counts them only at the end: a
    // cancel now would miss them (and say it cancelled none).
    if (record.state === 'accepting') return sendError(reply.header('retry-after', '1'), new BatchUploadingError(batchId));
    const counts = batchStatusOf(record, await confirmWithin('the batch counts', deadline, () => readBatchCounts(deps.jsm, batchId))).counts;
    if (record.state !== 'done' && counts.pending > 0) {
      // A marker per item: a finished one ignores it, a queued one is skipped on delivery, a running one aborted.
      await cancelItems(deps.cancellations, record);
      await deps.batches.put({ ...((await deps.batches.get(batchId)) ?? record), cancelRequestedAtMs: deps.now() });
    }
    return reply
      .code(202)
      .header('x-batch-id', batchId)
      .send({ batchId, cancelled: record.state === 'done' ? 0 : counts.pending });
  });

  app.route({
    method: ['PUT', 'PATCH', 'OPTIONS'],
    url: `${PREFIX}*`,
    handler: (request, reply) =>
      sendError(
        reply.header('allow', 'GET, POST, DELETE'),
        new MethodNotAllowedError(`method ${request.method} not allowed on ${PREFIX}: POST submits a batch, GET reads one, DELETE cancels one`),
      ),
  });
}

/** Every item checked as it is read (parseBatchItem). */
async function* checkedItems(raw: AsyncIterable<{ index: number; line: number; text: string }>, maxBodyBytes: number): AsyncGenerator<BatchItem> {
  for await (const item of raw) yield parseBatchItem(item, maxBodyBytes);
}

function batchIdOf(request: FastifyRequest): string {
  const target = parseInvocationTarget(request.raw.url ?? request.url, PREFIX);
  if (target.path !== '' || !BATCH_ID.test(target.name)) throw new BatchNotFoundError(target.name.slice(0, 100));
  return target.name;
}

function pageLimitOf(value: unknown): number {
  if (value === undefined) return DEFAULT_FAILURE_PAGE;
  const n = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_FAILURE_PAGE)) throw new BadRequestError(`limit must be 1 to ${MAX_FAILURE_PAGE}`);
  return n;
}

function cursorOf(value: unknown): number {
  if (value === undefined) return 1;
  const n = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1)) throw new BadRequestError('cursor must be the nextCursor of a previous page');
  return n;
}

async function cancelItems(cancellations: CancellationRequests, record: BatchRecord): Promise<void> {
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < record.accepted; i++) {
    while (inflight.size >= CANCEL_WINDOW) await Promise.race(inflight);
    const p = cancellations.request(batchCallId(record.batchId, i), record.createdAtMs);
    inflight.add(p);
    void p.then(
      () => inflight.delete(p),
      () => inflight.delete(p),
    );
  }
  await Promise.all(inflight);
}

/** The answer: 202 with the batch, or the refusal with what was kept (JSON once a batch exists). */
function answer(request: FastifyRequest, reply: FastifyReply, result: BatchResult): FastifyReply {
  if (result.outcome === 'refused') {
    throw result.error;
  }
  if (result.outcome === 'interrupted') return reply.code(499).send();
  if (result.outcome === 'duplicate') {
    reply.header('idempotent-replayed', 'true');
    return accepted(reply, result.batchId, result.record);
  }
  const { record } = result;
  if (result.outcome === 'accepted') return accepted(reply, record.batchId, record);
  return refusal(request, reply, record, result.error, result.notStored);
}

function accepted(reply: FastifyReply, batchId: string, record: BatchRecord | undefined): FastifyReply {
  return reply
    .code(202)
    .header('x-batch-id', batchId)
    .send({
      batchId,
      function: record?.function,
      state: record?.state,
      accepted: record?.accepted,
      // Item i (0-based, in the order sent) has call id <callIdPrefix><i>.
      callIdPrefix: `${batchId}-`,
    });
}

function refusal(request: FastifyRequest, reply: FastifyReply, record: BatchRecord, error: AsyncFnError, notStored: readonly number[]): FastifyReply {
  if (error.httpStatus === 503) reply.header('retry-after', '1');
  // The rest of the body is not read: the connection cannot carry another request.
  if (!request.raw.complete) reply.header('connection', 'close');
  return reply
    .code(error.httpStatus)
    .header('x-asyncfn-error', error.code)
    .header('x-batch-id', record.batchId)
    .send({
      batchId: record.batchId,
      accepted: record.accepted,
      callIdPrefix: `${record.batchId}-`,
      error: { code: error.code, message: error.message, ...(isItemError(error) ? { index: error.index, line: error.line } : {}) },
      ...(notStored.length > 0 ? { notStored: notStored.slice(0, 100) } : {}),
    });
}
