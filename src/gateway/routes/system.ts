import type { FastifyInstance, FastifyReply } from 'fastify';
import type { FunctionResolver } from '../../functions/index.js';
import { CannotListError } from '../../errors.js';
import { sendError, sendRefusal } from '../http-errors.js';

export interface SystemRouteDeps {
  readonly resolver: FunctionResolver;
  /** true while the gateway can accept invocations (connected to NATS). */
  readonly isReady: () => boolean;
}

/** Health and discovery: `/healthz` and OpenFaaS's `GET /system/functions`. */
export async function systemRoutes(app: FastifyInstance, deps: SystemRouteDeps): Promise<void> {
  // The gateway holds no state: healthy and ready both mean "connected to NATS".
  const probe = async (_request: unknown, reply: FastifyReply) =>
    deps.isReady() ? reply.type('text/plain; charset=utf-8').send('OK\n') : sendRefusal(reply, 503, 'not connected to NATS', 'ASYNCFN_ERR_QUEUE_UNAVAILABLE');
  app.get('/healthz', probe);
  app.get('/readyz', probe);

  app.get('/system/functions', async (_request, reply) => {
    const functions = await deps.resolver.list();
    if (!functions) return sendError(reply, new CannotListError());
    // OpenFaaS FunctionStatus fields that a registry of URLs can fill.
    return reply.send(functions.map((fn) => ({ name: fn.name, namespace: fn.namespace, annotations: fn.annotations })));
  });
}
