import type { FastifyInstance } from 'fastify';
import { request as upstreamRequest, type Dispatcher } from 'undici';
import { FunctionNotFoundError } from '../../errors.js';
import { functionUrl, parseFunctionRef, type FunctionResolver } from '../../functions/index.js';
import { isTimeout, withTimeout } from '../../http/client.js';
import { durationSeconds, endToEndHeaders, isHopByHop, toHeaderRecord, unixNanos } from '../../http/headers.js';
import { sendError } from '../http-errors.js';
import { callIdFrom, parseInvocationTarget } from '../invocation-target.js';

export interface FunctionRouteDeps {
  readonly resolver: FunctionResolver;
  readonly dispatcher: Dispatcher;
  readonly defaultNamespace: string;
  /** Longest a synchronous call may take, ms (OpenFaaS `upstream_timeout`). */
  readonly upstreamTimeoutMs: number;
  readonly now: () => number;
}

const PREFIX = '/function/';

/**
 * `/function/<name>[/<path>]`, any method: a synchronous reverse proxy. Bodies stream both ways;
 * nothing is buffered, so there is no size limit beyond the function's own.
 */
export async function functionRoutes(app: FastifyInstance, deps: FunctionRouteDeps): Promise<void> {
  // Hand the request stream to undici untouched instead of parsing it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.all(`${PREFIX}*`, async (request, reply) => {
    const target = parseInvocationTarget(request.raw.url ?? request.url, PREFIX);
    const ref = parseFunctionRef(target.name, deps.defaultNamespace);
    const callId = callIdFrom(request.headers['x-call-id']);
    const fn = await deps.resolver.resolve(ref);
    if (!fn) throw new FunctionNotFoundError(target.name);

    const clientGone = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) clientGone.abort();
    });
    const signal = withTimeout(clientGone.signal, deps.upstreamTimeoutMs);
    const hasBody = request.headers['content-length'] !== undefined
      ? request.headers['content-length'] !== '0'
      : request.headers['transfer-encoding'] !== undefined;
    const startedAtMs = deps.now();
    const started = performance.now();
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await upstreamRequest(functionUrl(fn, target.path, target.query), {
        method: request.method as Dispatcher.HttpMethod,
        headers: {
          ...toHeaderRecord(endToEndHeaders(request.headers)),
          'x-call-id': callId,
          'x-start-time': unixNanos(startedAtMs),
          'x-forwarded-host': request.headers.host ?? '',
          'x-forwarded-for': request.ip,
        },
        body: hasBody ? request.raw : null,
        signal,
        dispatcher: deps.dispatcher,
      });
    } catch (err) {
      if (clientGone.signal.aborted) return reply;
      if (isTimeout(signal)) {
        return sendError(reply, 504, `function "${target.name}" did not answer within upstream_timeout (${deps.upstreamTimeoutMs} ms)`, 'ASYNCFN_ERR_UPSTREAM_TIMEOUT');
      }
      const reason = err instanceof Error ? err.message : String(err);
      return sendError(reply, 502, `could not reach function "${target.name}": ${reason}`, 'ASYNCFN_ERR_UPSTREAM_UNREACHABLE');
    }

    for (const [name, value] of Object.entries(upstream.headers)) {
      // The body is relayed byte for byte, so the upstream's content-length still holds.
      if (value !== undefined && (!isHopByHop(name) || name === 'content-length')) reply.header(name, value);
    }
    return reply
      .code(upstream.statusCode)
      .header('x-call-id', callId)
      .header('x-start-time', unixNanos(startedAtMs))
      .header('x-duration-seconds', durationSeconds(performance.now() - started))
      .send(upstream.body);
  });
}
