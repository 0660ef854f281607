import type { FastifyInstance } from 'fastify';
import { FunctionNotFoundError } from '../../errors.js';
import { parseFunctionRef, type FunctionResolver } from '../../functions/index.js';
import { endToEndHeaders } from '../../http/headers.js';
import type { InvocationPublisher } from '../../queue/publisher.js';
import { sendError } from '../http-errors.js';
import { callbackUrlFrom, callIdFrom, parseInvocationTarget } from '../invocation-target.js';

export interface AsyncFunctionRouteDeps {
  readonly resolver: FunctionResolver;
  readonly publisher: InvocationPublisher;
  readonly defaultNamespace: string;
  /** Subject every invocation is published to (named queues, #3, choose per function). */
  readonly subject: string;
  /** Largest accepted body, bytes (`max_body_size`). */
  readonly maxBodyBytes: number;
  /** Wall clock, unix ms. */
  readonly now: () => number;
}

const PREFIX = '/async-function/';
const EMPTY = new Uint8Array(0);

/**
 * `POST /async-function/<name>[/<path>]`: answers 202 with X-Call-Id only after JetStream's
 * PubAck, so a 202 always means the invocation is stored durably.
 */
export async function asyncFunctionRoutes(app: FastifyInstance, deps: AsyncFunctionRouteDeps): Promise<void> {
  // Bodies stay raw bytes whatever their content type: the function, not the gateway, parses them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.maxBodyBytes }, (_req, body, done) => done(null, body));

  app.post(`${PREFIX}*`, async (request, reply) => {
    const target = parseInvocationTarget(request.raw.url ?? request.url, PREFIX);
    const ref = parseFunctionRef(target.name, deps.defaultNamespace);
    const callId = callIdFrom(request.headers['x-call-id']);
    const callbackUrl = callbackUrlFrom(request.headers['x-callback-url']);
    if (!(await deps.resolver.resolve(ref))) throw new FunctionNotFoundError(target.name);

    await deps.publisher.publish(deps.subject, {
      callId,
      functionName: ref.name,
      namespace: ref.namespace,
      method: request.method,
      path: target.path,
      query: target.query,
      headers: endToEndHeaders(request.headers),
      body: (request.body as Buffer | undefined) ?? EMPTY,
      callbackUrl,
      enqueuedAtMs: deps.now(),
    });
    return reply.code(202).header('x-call-id', callId).send();
  });

  // OpenFaaS: only POST queues an invocation.
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: `${PREFIX}*`,
    handler: (request, reply) =>
      sendError(reply.header('allow', 'POST'), 405, `method ${request.method} not allowed on /async-function/: use POST`, 'ASYNCFN_ERR_METHOD_NOT_ALLOWED'),
  });
}
