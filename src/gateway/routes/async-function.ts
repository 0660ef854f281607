import { randomUUID } from 'node:crypto';
import { context, type Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AsyncFnError, FunctionNotFoundError, InvocationFinishedError, InvocationNotFoundError, MethodNotAllowedError } from '../../errors.js';
import { parseFunctionRef, type FunctionResolver } from '../../functions/index.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import type { InvocationPublisher } from '../../queue/publisher.js';
import { asUnavailable, confirmWithin, deadlineAfter } from '../../queue/deadline.js';
import type { CancellationRequests } from '../../status/cancellations.js';
import { FINAL_STATES, type InvocationRecord, type RecordStore } from '../../status/records.js';
import { isRecordKey } from '../../status/wait.js';
import type { IdempotencyClaim, IdempotencyClaims } from '../../status/idempotency.js';
import { delayedSubject } from '../../queue/delayed.js';
import { idempotencyKeyFrom, notBeforeFrom, storeResultFrom } from '../request-options.js';
import type { QueueRouter } from '../queue-router.js';
import { sendError } from '../http-errors.js';
import { forwardedHeaders } from '../forwarded-headers.js';
import { callbackUrlFrom, callerCallIdFrom, parseInvocationTarget } from '../invocation-target.js';
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
  /**
   * Longest wait for JetStream per request, all round trips together, ms (`publish_timeout`,
   * default 1000): past it the answer is 503 with Retry-After.
   */
  readonly publishTimeoutMs: number;
}

/** The gateway's own header naming the invocation a chained one was called from. */
export const PARENT_CALL_ID_HEADER = 'x-parent-call-id';

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
    const callerCallId = callerCallIdFrom(request.headers['x-call-id']);
    let callId = callerCallId ?? randomUUID();
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
    // Every JetStream round trip from here on shares this deadline (the registry and the callback's
    // DNS check above have their own): JetStream's part of the answer takes at most publish_timeout.
    const deadline = deadlineAfter(deps.publishTimeoutMs, performance.now());
    const route = await confirmWithin('the queue', deadline, () => deps.router.route(fn, enqueuedAtMs));
    if (span.isRecording()) span.setAttribute(A.queue, route.queue);
    const recordOf = (id: string, parentCallId: string | undefined): InvocationRecord => ({
      callId: id,
      ...(parentCallId === undefined ? {} : { parentCallId }),
      function: ref.name,
      namespace: ref.namespace,
      queue: route.queue,
      state: notBeforeMs === undefined ? 'queued' : 'scheduled',
      attempts: 0,
      enqueuedAtMs,
      notBeforeMs,
    });

    // A caller-chosen call id may already name another invocation: OpenFaaS chains functions by
    // pointing X-Callback-Url at /async-function/<next>, and the worker's callback carries the
    // first call's X-Call-Id. Only these requests pay a round trip before the publish: the atomic
    // create of the record tells whether the id is taken, and if so this invocation gets a fresh id
    // with the caller's as its parent (a 409 would break the chaining pattern).
    let parentCallId: string | undefined;
    let recordedEarly: string | undefined;
    if (callerCallId !== undefined) {
      const created = await confirmWithin('the invocation record', deadline, () => deps.records.createIfAbsent(recordOf(callerCallId, undefined)));
      if (created) recordedEarly = callerCallId;
      else {
        parentCallId = callerCallId;
        callId = randomUUID();
      }
    }
    // A repeat of a key answers with the first request's call id, and publishes under it too (see
    // idempotency.ts): JetStream keeps one copy, whichever request's publish got through. A repeat
    // is no chain, whatever its X-Call-Id says.
    let claim: IdempotencyClaim | undefined;
    try {
      claim =
        idempotencyKey === undefined
          ? undefined
          : await confirmWithin('the idempotency key', deadline, () => deps.idempotency.claim(`${ref.namespace}/${ref.name}`, idempotencyKey, callId));
    } catch (err) {
      if (recordedEarly !== undefined) dropRecord(recordedEarly);
      throw err;
    }
    if (claim && !claim.first) {
      if (recordedEarly !== undefined && recordedEarly !== claim.callId) dropRecord(recordedEarly);
      callId = claim.callId;
      parentCallId = undefined;
    }
    if (span.isRecording() && callId !== callerCallId) span.setAttribute(A.callId, callId);
    // A delayed invocation waits in the delayed stream; its max event age counts from when it may run.
    const delayMs = notBeforeMs === undefined ? 0 : notBeforeMs - enqueuedAtMs;

    // Otherwise the record rides unconfirmed in the invocation's socket write, just ahead of it (see
    // the README, "Status API"): one JetStream round trip and one confirmation per 202. It is a
    // create, so a fast worker's "running" (or a replay's record) is never overwritten by "queued".
    const recordNow = recordedEarly === callId ? undefined : () => deps.records.createUnconfirmed(recordOf(callId, parentCallId));
    // The caller's trace context rides along; a tracing publisher replaces it with its PRODUCER span
    // (a child of the active server span).
    const callerTrace = callerTraceCarrier(request.headers);
    try {
      const subject = notBeforeMs === undefined ? route.subject : delayedSubject(route.subject);
      await confirmWithin('the publish', deadline, (timeoutMs) =>
        deps.publisher.publish(
          subject,
          {
            callId,
            parentCallId,
            functionName: ref.name,
            namespace: ref.namespace,
            method: request.method,
            path: target.path,
            query: target.query,
            // X-Parent-Call-Id is the gateway's to set, never a caller's.
            headers: forwardedHeaders(request).filter(([name]) => name !== PARENT_CALL_ID_HEADER),
            body: (request.body as Buffer | undefined) ?? EMPTY,
            callbackUrl,
            enqueuedAtMs,
            expiresAtMs: route.expiresAtMs === undefined ? undefined : route.expiresAtMs + delayMs,
            notBeforeMs,
            storeResult,
            msgId: claim?.msgId,
            traceparent: callerTrace?.traceparent,
            tracestate: callerTrace?.tracestate,
          },
          timeoutMs,
          recordNow && { beforeSend: recordNow },
        ),
      );
    } catch (err) {
      // In the background: the 503 must not wait on a JetStream that is not answering.
      void cleanUpRefused(callId, claim, err);
      throw err;
    }
    if (claim && !claim.first) reply.header('idempotent-replayed', 'true');
    if (parentCallId !== undefined) reply.header(PARENT_CALL_ID_HEADER, parentCallId);
    return reply.code(202).header('x-call-id', callId).send();
  };

  const dropRecord = (callId: string): void => {
    deps.records.delete(callId).catch((err: unknown) => deps.logger.debug({ err, callId }, 'could not delete the record of a refused invocation'));
  };

  /**
   * What a refused request leaves behind, and only the first request's (a repeat's failure must not
   * erase what the first stored).
   *
   * The record goes, even when the publish timed out and JetStream may have stored the message after
   * all: the worker writes the record again when it runs it, and a record kept for a message never
   * stored would say "queued" for ever and make the caller's resend with the same X-Call-Id look
   * like a chained call. The idempotency claim is given back only when the message surely was not
   * stored: after a time-out, a resend with the key must answer the call id that may be in the
   * stream, whose Nats-Msg-Id then makes the resend's copy a duplicate; a released claim would
   * answer a fresh call id whose message JetStream drops as that duplicate.
   */
  const cleanUpRefused = async (callId: string, claim: IdempotencyClaim | undefined, err: unknown): Promise<void> => {
    if (claim && !claim.first) return;
    dropRecord(callId);
    const maybeStored = err instanceof QueueUnavailableError && err.outcomeUnknown;
    if (claim && !maybeStored) {
      await deps.idempotency.release(claim).catch((e: unknown) => deps.logger.debug({ err: e, callId }, 'could not release an idempotency key'));
    }
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
    const deadline = deadlineAfter(deps.publishTimeoutMs, performance.now());
    const record = isRecordKey(callId) ? await confirmWithin('the record read', deadline, () => deps.records.get(callId)) : undefined;
    if (!record) return sendError(reply, new InvocationNotFoundError(callId));
    if (FINAL_STATES.has(record.state)) return sendError(reply, new InvocationFinishedError(callId, record.state));
    await confirmWithin('the cancellation', deadline, () => deps.cancellations.request(callId));
    return reply.code(202).header('x-call-id', callId).send();
  });

  // OpenFaaS: only POST queues an invocation; DELETE cancels one; GET reads one (invocation-status.ts).
  app.route({
    method: ['PUT', 'PATCH', 'OPTIONS'],
    url: `${PREFIX}*`,
    handler: (request, reply) =>
      sendError(
        reply.header('allow', 'GET, POST, DELETE'),
        new MethodNotAllowedError(`method ${request.method} not allowed on /async-function/: POST invokes, GET reads, DELETE cancels`),
      ),
  });
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
