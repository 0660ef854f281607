import type { FastifyInstance } from 'fastify';
import type { Dispatcher } from 'undici';
import { describeError, FunctionNotFoundError, UpstreamTimeoutError, UpstreamUnreachableError } from '../../errors.js';
import { annotatedTimeout, callTimeout, functionUrl, parseFunctionRef, type FunctionResolver } from '../../functions/index.js';
import { isTimeout, timeLimit, type HttpDispatcher } from '../../http/client.js';
import { requestVia } from '../../http/undici-parts.js';
import { connectionOptions, durationSeconds, isHopByHop, toHeaderRecord, unixNanos } from '../../http/headers.js';
import { forwardedHeaders } from '../forwarded-headers.js';
import { sendError } from '../http-errors.js';
import { callIdFrom, parseInvocationTarget } from '../invocation-target.js';
import { TelemetryAttributes as A } from '../../telemetry/attributes.js';
import { endSpan, errorFailure, injectHeaders, startClientSpan, startServerSpan, statusFailure } from '../../telemetry/spans.js';

export interface FunctionRouteDeps {
  readonly resolver: FunctionResolver;
  readonly dispatcher: HttpDispatcher;
  readonly defaultNamespace: string;
  /**
   * Longest a synchronous call may take, ms (OpenFaaS `upstream_timeout`); a function's timeout
   * annotation may shorten it (src/functions/timeout.ts).
   */
  readonly upstreamTimeoutMs: number;
  readonly now: () => number;
  /** Counts a call started (its function resolved): `gateway_function_invocation_started`. */
  readonly started?: ((functionName: string) => void) | undefined;
}

const PREFIX = '/function/';
/** `http.route` and span name of synchronous calls. */
const ROUTE = `${PREFIX}*`;

/**
 * `/function/<name>[/<path>]`, any method: a synchronous reverse proxy. Bodies stream both ways;
 * nothing is buffered, so there is no size limit beyond the function's own.
 */
export async function functionRoutes(app: FastifyInstance, deps: FunctionRouteDeps): Promise<void> {
  // Hand the request stream to undici untouched instead of parsing it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.all(ROUTE, async (request, reply) => {
    // A SERVER span continuing the caller's trace, and a CLIENT span for the call it proxies.
    const { span, context: traced } = startServerSpan(request.method, ROUTE, request.url, request.headers);
    const target = parseInvocationTarget(request.raw.url ?? request.url, PREFIX);
    const ref = parseFunctionRef(target.name, deps.defaultNamespace);
    const callId = callIdFrom(request.headers['x-call-id']);
    if (span.isRecording()) span.setAttributes({ [A.callId]: callId, [A.faasInvokedName]: ref.name, [A.namespace]: ref.namespace });
    const clientGone = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) clientGone.abort();
      endSpan(span, reply.statusCode, statusFailure(reply.statusCode, 500));
    });
    const fn = await deps.resolver.resolve(ref);
    if (!fn) throw new FunctionNotFoundError(target.name);
    // OpenFaaS counts a call started before it proxies it: `started − total` is the calls in flight.
    request.invokedFunction = ref.name;
    deps.started?.(ref.name);

    // The function's annotation applies as on the worker, capped by upstream_timeout; a bad one is
    // warned about in the worker's log, here it just leaves upstream_timeout. X-Timeout is the
    // async route's: here it is the caller's header, forwarded like any other.
    const timeout = callTimeout(deps.upstreamTimeoutMs, annotatedTimeout(fn.annotations, deps.upstreamTimeoutMs).timeout, undefined);
    const limit = timeLimit(clientGone.signal, timeout.ms);
    // The limit covers the whole exchange, the body's relay included; it ends with the reply.
    reply.raw.once('close', () => limit.clear());
    const { signal } = limit;
    const hasBody = request.headers['content-length'] !== undefined ? request.headers['content-length'] !== '0' : request.headers['transfer-encoding'] !== undefined;
    const startedAtMs = deps.now();
    const started = performance.now();
    const url = functionUrl(fn, target.path, target.query);
    const call = startClientSpan(`invoke ${ref.name}`, traced, request.method, url);
    if (call.isRecording()) call.setAttributes({ [A.callId]: callId, [A.faasInvokedName]: ref.name });
    const headers: Record<string, string | string[]> = {
      ...toHeaderRecord(forwardedHeaders(request)),
      'x-call-id': callId,
      'x-start-time': unixNanos(startedAtMs),
      'x-forwarded-host': request.headers.host ?? '',
      'x-forwarded-for': request.ip,
    };
    injectHeaders(call, traced, headers);
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await requestVia(deps.dispatcher, url, {
        method: request.method,
        headers,
        body: hasBody ? request.raw : null,
        signal,
      });
    } catch (err) {
      if (clientGone.signal.aborted) {
        endSpan(call, undefined, { type: 'aborted', message: 'the caller went away' });
        return reply;
      }
      if (isTimeout(signal)) {
        endSpan(call, undefined, { type: 'timeout', message: `no answer within ${timeout.ms} ms` });
        return sendError(reply, new UpstreamTimeoutError(target.name, timeout.setBy, timeout.ms));
      }
      endSpan(call, undefined, errorFailure(err));
      const reason = describeError(err);
      return sendError(reply, new UpstreamUnreachableError(target.name, reason));
    }
    const status = upstream.statusCode;
    // The call lasts until its body has been relayed (or the relay was cut).
    upstream.body.once('close', () => endSpan(call, status, statusFailure(status, 400)));

    // Hop-by-hop headers (and those the function's Connection header names) stay on that hop.
    const named = connectionOptions(upstream.headers);
    for (const [name, value] of Object.entries(upstream.headers)) {
      // The body is relayed byte for byte, so the upstream's content-length still holds.
      if (value !== undefined && ((!isHopByHop(name) && !named.has(name)) || name === 'content-length')) reply.header(name, value);
    }
    return reply
      .code(upstream.statusCode)
      .header('x-call-id', callId)
      .header('x-start-time', unixNanos(startedAtMs))
      .header('x-duration-seconds', durationSeconds(performance.now() - started))
      .send(upstream.body);
  });
}
