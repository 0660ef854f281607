import { randomUUID } from 'node:crypto';
import { context, type Context, type Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvocationFinishedError, InvocationNotFoundError, MethodNotAllowedError } from '../../errors.js';
import type { FunctionResolver } from '../../functions/index.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import type { InvocationPublisher } from '../../queue/publisher.js';
import { asUnavailable, confirmWithin, deadlineAfter } from '../../queue/deadline.js';
import type { CancellationRequests } from '../../status/cancellations.js';
import { FINAL_STATES, type RecordStore } from '../../status/records.js';
import type { QueuedGroups } from '../../status/queued-groups.js';
import { isRecordKey } from '../../status/wait.js';
import type { IdempotencyClaims } from '../../status/idempotency.js';
import type { QueueRouter } from '../queue-router.js';
import { sendError } from '../http-errors.js';
import { forwardedHeaders } from '../forwarded-headers.js';
import { parseInvocationTarget } from '../invocation-target.js';
import { enqueue, startedBy, type CallbackCheck, type EnqueuePorts, type EnqueueRequest } from '../enqueue.js';
import { acceptedHeaders, ASYNC_PREFIX, enqueueRequestOf } from '../enqueue-http.js';
import { enqueueLarge } from '../enqueue-large.js';
import { installAsyncBodyParser, LargeBody } from '../large-body.js';
import type { PayloadStore } from '../../queue/payload-store.js';
import { progressTargetOf } from '../progress-target.js';
import { progressReportHandler } from './progress.js';
import { endSpan, startServerSpan, statusFailure, tracingActive, UNTRACED } from '../../telemetry/spans.js';
import { callerGone } from '../../http/caller-gone.js';

export interface AsyncFunctionRouteDeps {
  readonly resolver: FunctionResolver;
  readonly publisher: InvocationPublisher;
  readonly router: QueueRouter;
  readonly records: RecordStore;
  /** The default path's grouped `queued` records (src/status/queued-groups.ts); absent, one record per invocation. */
  readonly queuedGroups?: QueuedGroups | undefined;
  readonly cancellations: CancellationRequests;
  readonly defaultNamespace: string;
  readonly logger: Logger;
  /** false while disconnected from NATS: refuse at once instead of waiting on a buffered write. */
  readonly isReady: () => boolean;
  /** Largest body carried in the message, bytes (`max_body_size`). */
  readonly maxBodyBytes: number;
  /** Largest body at all, bytes (`max_large_body_size`): above maxBodyBytes it goes to `payloads`. */
  readonly maxLargeBodyBytes: number;
  /** The payload bucket for large bodies (claim check); absent, max_body_size is the limit. */
  readonly payloads?: PayloadStore | undefined;
  /** Wall clock, unix ms. */
  readonly now: () => number;
  /** First-request election for Idempotency-Key. */
  readonly idempotency: IdempotencyClaims;
  /** Longest delay X-Delay-Seconds / X-Not-Before may ask for, ms (`max_delay`). */
  readonly maxDelayMs: number;
  /** The SSRF guard's submit-time check of X-Callback-Url: the refusal to answer 400 with, if any. */
  readonly checkCallback: CallbackCheck;
  /**
   * Longest wait for JetStream per request, all round trips together, ms (`publish_timeout`,
   * default 1000): past it the answer is 503 with Retry-After.
   */
  readonly publishTimeoutMs: number;
  /** Counts an invocation started (its function resolved): `gateway_function_invocation_started`. */
  readonly started?: ((functionName: string) => void) | undefined;
  /** The key progress URLs are signed with (`POST /async-function/<call-id>/progress`, progress.ts). */
  readonly progressKey: Uint8Array;
}

/** `http.route` and span name of invocations. */
const ROUTE = `${ASYNC_PREFIX}*`;
const EMPTY = new Uint8Array(0);

/**
 * `POST /async-function/<name>[/<path>]`: answers 202 with X-Call-Id only after JetStream's
 * PubAck, so a 202 always means the invocation is stored durably. The use case is enqueue.ts;
 * this route translates HTTP to and from it.
 */
export async function asyncFunctionRoutes(app: FastifyInstance, deps: AsyncFunctionRouteDeps): Promise<void> {
  installAsyncBodyParser(app, { maxBodyBytes: deps.maxBodyBytes, maxLargeBodyBytes: deps.payloads ? deps.maxLargeBodyBytes : 0 });

  const requireQueue = (): void => {
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
  };

  const ports = enqueuePortsOf(deps);

  /** The request as the enqueue use case takes it: headers parsed and validated (400 otherwise). */
  const readOptions = { defaultNamespace: deps.defaultNamespace, maxDelayMs: deps.maxDelayMs, now: deps.now };
  const enqueueRequestFrom = (request: FastifyRequest, span: Span): EnqueueRequest =>
    enqueueRequestOf(
      { method: request.method, url: request.raw.url ?? request.url, headers: request.headers, forwarded: forwardedHeaders(request) },
      request.body instanceof Uint8Array ? request.body : EMPTY,
      span,
      readOptions,
    );

  const reportProgress = progressReportHandler({
    records: deps.records,
    key: deps.progressKey,
    isReady: deps.isReady,
    publishTimeoutMs: deps.publishTimeoutMs,
    now: deps.now,
  });

  app.post(ROUTE, async (request, reply) => {
    // A function reporting progress, not an invocation (progress-target.ts says why they share the route).
    const progress = progressTargetOf(request.raw.url);
    if (progress) return reportProgress(request, reply, progress);
    // A SERVER span continuing the caller's traceparent, ended with the response's final status.
    // While tracing is off there is none: no span, context or listener per request.
    let span = UNTRACED;
    let traced: Context | undefined;
    if (tracingActive()) {
      ({ span, context: traced } = startServerSpan(request.method, ROUTE, request.url, request.headers));
      const ended = span;
      reply.raw.once('close', () => endSpan(ended, reply.statusCode, statusFailure(reply.statusCode, 500)));
    }
    try {
      requireQueue();
      const { body } = request;
      let result;
      if (body instanceof LargeBody) {
        const large = { ...ports, payloads: deps.payloads!, maxLargeBodyBytes: deps.maxLargeBodyBytes };
        const gone = (): boolean => callerGone(request.raw);
        const req = enqueueRequestFrom(request, span);
        result = await (traced === undefined ? enqueueLarge(large, req, body, gone) : context.with(traced, enqueueLarge, undefined, large, req, body, gone));
        // Undefined: the caller left during the upload, after the invocation started.
        if (result === undefined || startedBy(result)) request.invokedFunction = req.ref.name;
        if (result === undefined) return reply.code(499).send();
        // The rest of a refused body is not read: the connection cannot carry another request.
        if (result.outcome === 'refused') reply.header('connection', 'close');
      } else {
        const req = enqueueRequestFrom(request, span);
        result = await (traced === undefined ? enqueue(ports, req) : context.with(traced, enqueue, undefined, ports, req));
        if (startedBy(result)) request.invokedFunction = req.ref.name;
      }
      // A refusal goes through the error handler, as every thrown coded error does.
      if (result.outcome === 'refused') throw result.error;
      return reply.code(202).headers(acceptedHeaders(result)).send();
    } catch (err) {
      if (span.isRecording()) span.recordException(err instanceof Error ? err : String(err));
      throw err;
    }
  });

  // Cancels a queued or running invocation: queued ones are skipped on delivery, running ones aborted.
  // The record is final only once the invocation settles: one whose function has answered gets 202
  // too, ends as answered, and its worker deletes the marker (README, "Cancellation").
  app.delete(`${ASYNC_PREFIX}*`, async (request, reply) => {
    requireQueue();
    const callId = parseInvocationTarget(request.raw.url ?? request.url, ASYNC_PREFIX).name;
    // No record can exist under a call id that is no KV key ("!", "a..b"): 404, not the KV's error as a 503.
    const deadline = deadlineAfter(deps.publishTimeoutMs, performance.now());
    const record = isRecordKey(callId) ? await confirmWithin('the record read', deadline, () => deps.records.get(callId)) : undefined;
    if (!record) return sendError(reply, new InvocationNotFoundError(callId));
    if (FINAL_STATES.has(record.state)) return sendError(reply, new InvocationFinishedError(callId, record.state));
    await confirmWithin('the cancellation', deadline, () => deps.cancellations.request(callId, record.enqueuedAtMs));
    return reply.code(202).header('x-call-id', callId).send();
  });

  // OpenFaaS: only POST queues an invocation; DELETE cancels one; GET reads one (invocation-status.ts).
  app.route({
    method: ['PUT', 'PATCH', 'OPTIONS'],
    url: `${ASYNC_PREFIX}*`,
    handler: (request, reply) =>
      sendError(
        reply.header('allow', 'GET, POST, DELETE'),
        new MethodNotAllowedError(`method ${request.method} not allowed on /async-function/: POST invokes, GET reads, DELETE cancels`),
      ),
  });
}

/** What the enqueue use case gets from the route's dependencies (the fastify route's and fast-enqueue.ts's). */
export function enqueuePortsOf(deps: AsyncFunctionRouteDeps): EnqueuePorts {
  return {
    resolver: deps.resolver,
    checkCallback: deps.checkCallback,
    router: deps.router,
    records: deps.records,
    queuedGroups: deps.queuedGroups,
    idempotency: deps.idempotency,
    publisher: deps.publisher,
    newCallId: randomUUID,
    logger: deps.logger,
    publishTimeoutMs: deps.publishTimeoutMs,
    started: deps.started,
  };
}

/**
 * A JetStream failure while waiting on it with no deadline (a long-poll's watch) means the queue
 * is unavailable: 503. Everything else waits with `confirmWithin` and `publish_timeout`.
 */
export async function unavailableOnFailure<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw asUnavailable(err);
  }
}
