import { context, type Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AsyncFnError, FunctionNotFoundError } from '../../errors.js';
import { parseFunctionRef, type FunctionResolver } from '../../functions/index.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import type { InvocationPublisher } from '../../queue/publisher.js';
import type { CancellationRequests } from '../../status/cancellations.js';
import { FINAL_STATES, type RecordStore } from '../../status/records.js';
import { isRecordKey } from '../../status/wait.js';
import type { IdempotencyClaims } from '../../status/idempotency.js';
import { delayedSubject } from '../../queue/delayed.js';
import { idempotencyKeyFrom, notBeforeFrom, storeResultFrom } from '../request-options.js';
import type { QueueRouter } from '../queue-router.js';
import { sendError } from '../http-errors.js';
import { forwardedHeaders } from '../forwarded-headers.js';
import { callbackUrlFrom, callIdFrom, parseInvocationTarget } from '../invocation-target.js';
import { TelemetryAttributes as A } from '../../telemetry/attributes.js';
import { callerTraceCarrier, endSpan, startServerSpan, statusFailure } from '../../telemetry/spans.js';

export interface AsyncFunctionRouteDeps {
  readonly resolver: FunctionResolver;
  readonly publisher: InvocationPublisher;
  readonly router: QueueRouter;
  readonly records: RecordStore;
  readonly cancellations: CancellationRequests;
  readonly defaultNamespace: string;
  readonly logger: Logger;
  /** false while disconnected from NATS: refuse at once instead of waiting on a buffered write. */
  readonly isReady: () => boolean;
  /** Largest accepted body, bytes (`max_body_size`). */
  readonly maxBodyBytes: number;
  /** Wall clock, unix ms. */
  readonly now: () => number;
  /** First-request election for Idempotency-Key. */
  readonly idempotency: IdempotencyClaims;
  /** Longest delay X-Delay-Seconds / X-Not-Before may ask for, ms (`max_delay`). */
  readonly maxDelayMs: number;
  /** The SSRF guard's submit-time check of X-Callback-Url: the refusal to answer 400 with, if any. */
  readonly checkCallback: (url: URL) => Promise<AsyncFnError | undefined>;
}

const PREFIX = '/async-function/';
/** `http.route` and span name of invocations. */
const ROUTE = `${PREFIX}*`;
const EMPTY = new Uint8Array(0);

/**
 * `POST /async-function/<name>[/<path>]`: answers 202 with X-Call-Id only after JetStream's
 * PubAck, so a 202 always means the invocation is stored durably.
 */
export async function asyncFunctionRoutes(app: FastifyInstance, deps: AsyncFunctionRouteDeps): Promise<void> {
  // Bodies stay raw bytes whatever their content type: the function, not the gateway, parses them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.maxBodyBytes }, (_req, body, done) => done(null, body));

  const requireQueue = (): void => {
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
  };

  const accept = async (request: FastifyRequest, reply: FastifyReply, span: Span): Promise<FastifyReply> => {
    requireQueue();
    const target = parseInvocationTarget(request.raw.url ?? request.url, PREFIX);
    const ref = parseFunctionRef(target.name, deps.defaultNamespace);
    let callId = callIdFrom(request.headers['x-call-id']);
    const callbackUrl = callbackUrlFrom(request.headers['x-callback-url']);
    const idempotencyKey = idempotencyKeyFrom(request.headers['idempotency-key']);
    const storeResult = storeResultFrom(request.headers['x-store-result']);
    const enqueuedAtMs = deps.now();
    const notBeforeMs = notBeforeFrom(request.headers['x-delay-seconds'], request.headers['x-not-before'], enqueuedAtMs, deps.maxDelayMs);
    if (span.isRecording()) span.setAttributes({ [A.callId]: callId, [A.faasInvokedName]: ref.name, [A.namespace]: ref.namespace });
    // A callback target that can only be refused at delivery is refused now, while the caller listens.
    const [fn, refused] = await Promise.all([
      deps.resolver.resolve(ref),
      callbackUrl === undefined ? undefined : deps.checkCallback(new URL(callbackUrl)),
    ]);
    if (refused) throw refused;
    if (!fn) throw new FunctionNotFoundError(target.name);
    const route = await deps.router.route(fn, enqueuedAtMs);
    if (span.isRecording()) span.setAttribute(A.queue, route.queue);
    // A repeat of a key answers with the first request's call id, and publishes under it too (see
    // idempotency.ts): JetStream keeps one copy, whichever request's publish got through.
    const claim =
      idempotencyKey === undefined
        ? undefined
        : await unavailableOnFailure(() => deps.idempotency.claim(`${ref.namespace}/${ref.name}`, idempotencyKey, callId));
    if (claim) callId = claim.callId;
    // A delayed invocation waits in the delayed stream; its max event age counts from when it may run.
    const delayMs = notBeforeMs === undefined ? 0 : notBeforeMs - enqueuedAtMs;

    // The record and the invocation are written at once: one round trip instead of two. The record
    // is created only if absent, so a fast worker's "running" is never overwritten by "queued".
    const recorded = deps.records
      .createIfAbsent({
        callId,
        function: ref.name,
        namespace: ref.namespace,
        queue: route.queue,
        state: notBeforeMs === undefined ? 'queued' : 'scheduled',
        attempts: 0,
        enqueuedAtMs,
        notBeforeMs,
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    // The caller's trace context rides along; a tracing publisher replaces it with its PRODUCER span
    // (a child of the active server span).
    const callerTrace = callerTraceCarrier(request.headers);
    try {
      await deps.publisher.publish(notBeforeMs === undefined ? route.subject : delayedSubject(route.subject), {
        callId,
        functionName: ref.name,
        namespace: ref.namespace,
        method: request.method,
        path: target.path,
        query: target.query,
        headers: forwardedHeaders(request),
        body: (request.body as Buffer | undefined) ?? EMPTY,
        callbackUrl,
        enqueuedAtMs,
        expiresAtMs: route.expiresAtMs === undefined ? undefined : route.expiresAtMs + delayMs,
        notBeforeMs,
        storeResult,
        msgId: claim?.msgId,
        traceparent: callerTrace?.traceparent,
        tracestate: callerTrace?.tracestate,
      });
    } catch (err) {
      await recorded;
      // Only the first request's leftovers: a repeat's failure must not erase what the first stored.
      if (!claim || claim.first) {
        await deps.records.delete(callId).catch(() => undefined);
        if (claim) await deps.idempotency.release(claim).catch(() => undefined);
      }
      throw err;
    }
    const recordError = await recorded;
    // The invocation is stored: answering 503 now would make the caller send it twice.
    if (recordError) deps.logger.warn({ err: recordError, callId }, 'accepted an invocation whose record could not be written');
    if (claim && !claim.first) reply.header('idempotent-replayed', 'true');
    return reply.code(202).header('x-call-id', callId).send();
  };

  app.post(ROUTE, async (request, reply) => {
    // A SERVER span continuing the caller's traceparent, ended with the response's final status.
    const { span, context: traced } = startServerSpan(request.method, ROUTE, request.url, request.headers);
    reply.raw.once('close', () => endSpan(span, reply.statusCode, statusFailure(reply.statusCode, 500)));
    try {
      return await context.with(traced, accept, undefined, request, reply, span);
    } catch (err) {
      if (span.isRecording()) span.recordException(err instanceof Error ? err : String(err));
      throw err;
    }
  });

  // Cancels a queued or running invocation: queued ones are skipped on delivery, running ones aborted.
  app.delete(`${PREFIX}*`, async (request, reply) => {
    requireQueue();
    const callId = parseInvocationTarget(request.raw.url ?? request.url, PREFIX).name;
    // No record can exist under a call id that is no KV key ("!", "a..b"): 404, not the KV's error as a 503.
    const record = isRecordKey(callId) ? await unavailableOnFailure(() => deps.records.get(callId)) : undefined;
    if (!record) return sendError(reply, 404, `no invocation with call id "${callId}"`, 'ASYNCFN_ERR_INVOCATION_NOT_FOUND');
    if (FINAL_STATES.has(record.state)) {
      return sendError(reply, 404, `invocation "${callId}" already finished (${record.state})`, 'ASYNCFN_ERR_INVOCATION_FINISHED');
    }
    await unavailableOnFailure(() => deps.cancellations.request(callId));
    return reply.code(202).header('x-call-id', callId).send();
  });

  // OpenFaaS: only POST queues an invocation; DELETE cancels one; GET reads one (invocation-status.ts).
  app.route({
    method: ['PUT', 'PATCH', 'OPTIONS'],
    url: `${PREFIX}*`,
    handler: (request, reply) =>
      sendError(
        reply.header('allow', 'GET, POST, DELETE'),
        405,
        `method ${request.method} not allowed on /async-function/: POST invokes, GET reads, DELETE cancels`,
        'ASYNCFN_ERR_METHOD_NOT_ALLOWED',
      ),
  });
}

/** A JetStream KV failure while accepting, reading or cancelling means the queue is unavailable: 503. */
export async function unavailableOnFailure<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof AsyncFnError) throw err;
    throw new QueueUnavailableError(err instanceof Error ? err.message : String(err), { cause: err });
  }
}
