/**
 * The enqueue use case behind `POST /async-function/<name>`, apart from HTTP: resolve the function,
 * check the callback target, choose the queue, tell a chained call from a new one, claim the
 * idempotency key, admit the invocation to its turn's group of `queued` records (or write its
 * own record) and publish, rolling back what a refused request left. The route
 * (routes/async-function.ts) only turns the request into an {@link EnqueueRequest} and the
 * {@link EnqueueResult} into a response.
 */
import type { Span } from '@opentelemetry/api';
import { FunctionNotFoundError, isAsyncFnError, type AsyncFnError } from '../errors.js';
import type { FunctionRef, FunctionResolver } from '../functions/index.js';
import type { PayloadRef } from '../queue/payload-store.js';
import { confirmWithin, deadlineAfter, failureWithin, msLeftFor } from '../queue/deadline.js';
import { delayedSubject } from '../queue/topology.js';
import { QueueUnavailableError } from '../queue/errors.js';
import type { InvocationPublisher } from '../queue/publisher.js';
import type { IdempotencyClaim, IdempotencyClaims } from '../status/idempotency.js';
import type { InvocationRecord, RecordStore } from '../status/records.js';
import type { QueuedGroups } from '../status/queued-groups.js';
import { TelemetryAttributes as A } from '../telemetry/attributes.js';
import type { QueueRouter } from './queue-router.js';

/** What enqueueing needs from the rest of asyncfn; tests give fakes. */
export interface EnqueuePorts {
  readonly resolver: Pick<FunctionResolver, 'resolve' | 'resolveNow'>;
  /** The SSRF guard's submit-time check of X-Callback-Url: the refusal to answer with, if any. */
  readonly checkCallback: CallbackCheck;
  /** `routeNow`, when given, routes to a provisioned queue without a round trip's promise and timer. */
  readonly router: Pick<QueueRouter, 'route'> & Partial<Pick<QueueRouter, 'routeNow'>>;
  readonly records: Pick<RecordStore, 'createIfAbsent' | 'createUnconfirmed' | 'delete'>;
  /**
   * The default path's call ids and `queued` records: one group record per event-loop turn
   * (src/status/queued-groups.ts). Absent, each invocation gets a fresh id and its own record.
   */
  readonly queuedGroups?: QueuedGroups | undefined;
  /** First-request election for Idempotency-Key. */
  readonly idempotency: IdempotencyClaims;
  readonly publisher: InvocationPublisher;
  /** A fresh call id (a UUID). */
  readonly newCallId: () => string;
  /** Where failures of the background clean-up go (debug level). */
  readonly logger: { debug(obj: object, msg: string): void };
  /**
   * Longest wait for JetStream per request, all round trips together, ms (`publish_timeout`,
   * default 1000): past it the request is refused with ASYNCFN_ERR_QUEUE_UNAVAILABLE (503).
   */
  readonly publishTimeoutMs: number;
  /**
   * Called once the function is resolved, before anything else can refuse the request: the
   * invocation has started (`gateway_function_invocation_started`). A refusal from then on says so
   * (`started` in its result).
   */
  readonly started?: ((functionName: string) => void) | undefined;
}

/**
 * The submit-time check of a callback URL. `allowed`, when given, tells at once that an URL (its
 * `href`) passed before for good, so the common request, whose callers name the same few
 * receivers, is not parsed and checked again.
 */
export type CallbackCheck = ((url: URL) => Promise<AsyncFnError | undefined>) & { readonly allowed?: (href: string) => boolean };

/** One request to enqueue, as the route read it (headers parsed and validated). */
export interface EnqueueRequest {
  readonly ref: FunctionRef;
  /** The function's name as the caller wrote it (for the not-found message). */
  readonly rawName: string;
  readonly method: string;
  /** Path suffix after the function's name, "" or "/a/b", percent-encoded as received. */
  readonly path: string;
  /** Raw query string without "?". */
  readonly query: string;
  /** The headers forwarded to the function, lower-cased names, one pair per value. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Uint8Array;
  /** A body already stored in the payload bucket (claim check); `body` is then empty. */
  readonly bodyRef?: PayloadRef | undefined;
  /** The caller's X-Call-Id, validated; undefined when none was sent. */
  readonly callerCallId: string | undefined;
  /** X-Callback-Url, an absolute http(s) URL; undefined when absent. */
  readonly callbackUrl: string | undefined;
  readonly idempotencyKey: string | undefined;
  /** X-Concurrency-Key: the invocations that share it get their own lane and limit. */
  readonly concurrencyKey?: string | undefined;
  readonly storeResult: boolean | undefined;
  /** X-Timeout, ms: each attempt's limit, lowering the function's and the queue's; undefined = theirs. */
  readonly timeoutMs?: number | undefined;
  /** Unix ms the request was accepted at. */
  readonly enqueuedAtMs: number;
  /** Unix ms before which it must not run (X-Delay-Seconds, X-Not-Before); undefined = now. */
  readonly notBeforeMs: number | undefined;
  /** The caller's W3C trace context, carried along (a tracing publisher replaces it). */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** The request's SERVER span (a non-recording one when tracing is off). */
  readonly span: Span;
}

/**
 * How enqueueing ended: `accepted` (stored durably, PubAck received; `parentCallId` when the
 * caller's X-Call-Id named an earlier invocation, a chained call), `duplicate` (a repeat of an
 * Idempotency-Key: the first request's call id), or `refused` with the coded error to answer
 * (`started` when refused after its function was resolved: an invocation of it, as the metrics count it).
 */
export type EnqueueResult =
  | { readonly outcome: 'accepted'; readonly callId: string; readonly parentCallId: string | undefined }
  | { readonly outcome: 'duplicate'; readonly callId: string }
  | { readonly outcome: 'refused'; readonly error: AsyncFnError; readonly started?: boolean };

/** Whether enqueueing started an invocation (its function resolved), which the metrics count under its name. */
export function startedBy(result: EnqueueResult): boolean {
  return result.outcome !== 'refused' || result.started === true;
}

/**
 * Enqueues one invocation; resolves only after JetStream's PubAck (or a refusal). A coded error
 * (400, 404, 413, 503, …) is a `refused` result; anything else is a bug and rejects.
 */
export async function enqueue(ports: EnqueuePorts, req: EnqueueRequest): Promise<EnqueueResult> {
  const { ref, callerCallId, span } = req;
  // The default path's call id comes with its group, once the request can no longer be refused
  // before its publish; a caller's id, an Idempotency-Key and a delay keep a record of their own.
  const groups = callerCallId === undefined && req.idempotencyKey === undefined && req.notBeforeMs === undefined ? ports.queuedGroups : undefined;
  let callId = callerCallId ?? (groups === undefined ? ports.newCallId() : '');
  if (span.isRecording()) {
    span.setAttributes({ [A.faasInvokedName]: ref.name, [A.namespace]: ref.namespace });
    if (callId !== '') span.setAttribute(A.callId, callId);
  }
  let parentCallId: string | undefined;
  let claim: IdempotencyClaim | undefined;
  let recordedEarly: string | undefined;
  let started = false;
  try {
    // A callback target that can only be refused at delivery is refused now, while the caller listens.
    const { callbackUrl } = req;
    const [fn, refused] =
      callbackUrl === undefined || ports.checkCallback.allowed?.(callbackUrl) === true
        ? [ports.resolver.resolveNow?.(ref) ?? (await ports.resolver.resolve(ref)), undefined]
        : await Promise.all([ports.resolver.resolve(ref), ports.checkCallback(new URL(callbackUrl))]);
    if (refused) return { outcome: 'refused', error: refused };
    if (!fn) return { outcome: 'refused', error: new FunctionNotFoundError(req.rawName) };
    ports.started?.(ref.name);
    started = true;
    // Every JetStream round trip from here on shares this deadline (the registry and the callback's
    // DNS check above have their own): JetStream's part of the answer takes at most publish_timeout.
    const deadline = deadlineAfter(ports.publishTimeoutMs, performance.now());
    const route =
      ports.router.routeNow?.(fn, req.enqueuedAtMs, req.concurrencyKey) ??
      (await confirmWithin('the queue', deadline, () => ports.router.route(fn, req.enqueuedAtMs, req.concurrencyKey)));
    if (span.isRecording()) span.setAttribute(A.queue, route.queue);
    // Admitted now, so its group's write is deferred ahead of the publish below (queued-groups.ts).
    if (groups !== undefined) {
      callId = groups.admit({ functionName: ref.name, namespace: ref.namespace, queue: route.queue, enqueuedAtMs: req.enqueuedAtMs });
    }

    // A caller-chosen call id may already name another invocation: OpenFaaS chains functions by
    // pointing X-Callback-Url at /async-function/<next>, and the worker's callback carries the
    // first call's X-Call-Id. Only these requests pay a round trip before the publish: the atomic
    // create of the record tells whether the id is taken, and if so this invocation gets a fresh id
    // with the caller's as its parent (a 409 would break the chaining pattern).
    if (callerCallId !== undefined) {
      const created = await confirmWithin('the invocation record', deadline, () =>
        ports.records.createIfAbsent(recordOf(req, route.queue, callerCallId, undefined, req.notBeforeMs)),
      );
      if (created) recordedEarly = callerCallId;
      else {
        parentCallId = callerCallId;
        callId = ports.newCallId();
      }
    }
    // A repeat of a key answers with the first request's call id, and publishes under it too (see
    // idempotency.ts): JetStream keeps one copy, whichever request's publish got through. A repeat
    // is no chain, whatever its X-Call-Id says.
    const key = req.idempotencyKey;
    if (key !== undefined) {
      claim = await confirmWithin('the idempotency key', deadline, () => ports.idempotency.claim(`${ref.namespace}/${ref.name}`, key, callId, req.notBeforeMs));
      if (!claim.first) {
        if (recordedEarly !== undefined && recordedEarly !== claim.callId) dropRecord(ports, recordedEarly);
        callId = claim.callId;
        parentCallId = undefined;
      }
    }
    if (span.isRecording() && callId !== callerCallId) span.setAttribute(A.callId, callId);
    // A repeat keeps the first request's schedule, whatever its own says: its copy must go to the
    // stream the first's went to (delayed or not), the only one whose Nats-Msg-Id window knows it.
    const notBeforeMs = claim !== undefined && !claim.first ? claim.notBeforeMs : req.notBeforeMs;
    // A delayed invocation waits in the delayed stream; its max event age counts from when it may run.
    const delayMs = notBeforeMs === undefined ? 0 : notBeforeMs - req.enqueuedAtMs;

    // Otherwise the record rides unconfirmed in the invocation's socket write, just ahead of it (see
    // the README, "One durable write per 202"); a grouped invocation's record is its group's, which
    // does the same once per turn. It is a create, so a fast worker's "running" (or a replay's
    // record) is never overwritten by "queued".
    const recordNow = recordedEarly === callId || groups !== undefined ? undefined : recordUnconfirmed(ports, req, route.queue, callId, parentCallId, notBeforeMs);
    // From here on, what a refusal leaves behind is cleaned up by cleanUpRefused.
    recordedEarly = undefined;
    try {
      // A delayed invocation waits on its queue's delayed subject and names its lane for the move (delayed.ts).
      const subject = notBeforeMs === undefined ? route.subject : delayedSubject(route.queueSubject);
      const dueSubject = notBeforeMs !== undefined && route.subject !== route.queueSubject ? route.subject : undefined;
      // The publisher keeps the deadline itself (the confirmer's time-out): no timer per request.
      await ports.publisher.publish(
        subject,
        {
          callId,
          parentCallId,
          functionName: ref.name,
          namespace: ref.namespace,
          method: req.method,
          path: req.path,
          query: req.query,
          headers: req.headers,
          body: req.body,
          bodyRef: req.bodyRef,
          callbackUrl: req.callbackUrl,
          enqueuedAtMs: req.enqueuedAtMs,
          expiresAtMs: route.expiresAtMs === undefined ? undefined : route.expiresAtMs + delayMs,
          notBeforeMs,
          storeResult: req.storeResult,
          timeoutMs: req.timeoutMs,
          msgId: claim?.msgId,
          traceparent: req.traceparent,
          tracestate: req.tracestate,
        },
        msLeftFor('the publish', deadline, performance.now()),
        { beforeSend: recordNow, dueSubject, destination: notBeforeMs === undefined ? route.queueSubject : undefined },
      );
    } catch (err) {
      const failure = failureWithin('the publish', deadline, err);
      // In the background: the 503 must not wait on a JetStream that is not answering.
      void cleanUpRefused(ports, callId, claim, failure);
      throw failure;
    }
    return claim && !claim.first ? { outcome: 'duplicate', callId } : { outcome: 'accepted', callId, parentCallId };
  } catch (err) {
    // Refused before the publish, after the early record: it names no stored invocation.
    if (recordedEarly !== undefined) dropRecord(ports, recordedEarly);
    if (isAsyncFnError(err)) return { outcome: 'refused', error: err, started };
    throw err;
  }
}

/** The `queued` (or `scheduled`, at `notBeforeMs`) record of an invocation. */
function recordOf(req: EnqueueRequest, queue: string, callId: string, parentCallId: string | undefined, notBeforeMs: number | undefined): InvocationRecord {
  return queuedRecordOf({
    callId,
    parentCallId,
    functionName: req.ref.name,
    namespace: req.ref.namespace,
    queue,
    enqueuedAtMs: req.enqueuedAtMs,
    notBeforeMs,
  });
}

/** The record the gateway writes as it publishes an invocation (a single one, or a batch's item): `queued`, or `scheduled` when delayed. */
export function queuedRecordOf(fields: {
  readonly callId: string;
  readonly parentCallId?: string | undefined;
  readonly batchId?: string | undefined;
  readonly functionName: string;
  readonly namespace: string;
  readonly queue: string;
  readonly enqueuedAtMs: number;
  readonly notBeforeMs?: number | undefined;
}): InvocationRecord {
  return {
    callId: fields.callId,
    ...(fields.parentCallId === undefined ? {} : { parentCallId: fields.parentCallId }),
    ...(fields.batchId === undefined ? {} : { batchId: fields.batchId }),
    function: fields.functionName,
    namespace: fields.namespace,
    queue: fields.queue,
    state: fields.notBeforeMs === undefined ? 'queued' : 'scheduled',
    attempts: 0,
    enqueuedAtMs: fields.enqueuedAtMs,
    notBeforeMs: fields.notBeforeMs,
  };
}

function recordUnconfirmed(
  ports: EnqueuePorts,
  req: EnqueueRequest,
  queue: string,
  callId: string,
  parentCallId: string | undefined,
  notBeforeMs: number | undefined,
): () => void {
  return () => ports.records.createUnconfirmed(recordOf(req, queue, callId, parentCallId, notBeforeMs));
}

function dropRecord(ports: EnqueuePorts, callId: string): void {
  ports.records.delete(callId).catch((err: unknown) => ports.logger.debug({ err, callId }, 'could not delete the record of a refused invocation'));
}

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
async function cleanUpRefused(ports: EnqueuePorts, callId: string, claim: IdempotencyClaim | undefined, err: unknown): Promise<void> {
  if (claim && !claim.first) return;
  // A grouped invocation refused before its group was written just leaves the group.
  if (ports.queuedGroups?.withdraw(callId) !== true) dropRecord(ports, callId);
  const maybeStored = err instanceof QueueUnavailableError && err.outcomeUnknown;
  if (claim && !maybeStored) {
    await ports.idempotency.release(claim).catch((e: unknown) => ports.logger.debug({ err: e, callId }, 'could not release an idempotency key'));
  }
}
