import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { parseFunctionRef } from '../functions/index.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import { parseInvocationTarget } from './invocation-target.js';
import { progressTargetOf } from './progress-target.js';

/**
 * Statuses answered before a function was resolved: their names are the caller's, not the registry's
 * (401 and 431 are answered by hooks before any route runs).
 */
const UNRESOLVED = new Set([400, 401, 404, 405, 413, 431]);

/** The function an invocation route named, when it is a valid name. */
function functionNameOf(url: string, prefix: string, defaultNamespace: string): string | undefined {
  try {
    return parseFunctionRef(parseInvocationTarget(url, prefix).name, defaultNamespace).name;
  } catch {
    return undefined;
  }
}

/**
 * Counts every request by route pattern (bounded labels) and every invocation by function and
 * status, the OpenFaaS way: `code` is the function's status for sync calls, 202 for async ones.
 */
export function installMetrics(app: FastifyInstance, registry: Registry, metrics: GatewayMetrics, defaultNamespace: string): void {
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  const count = (request: FastifyRequest, reply: FastifyReply): void => {
    const path = request.routeOptions.url ?? 'unmatched';
    const status = String(reply.statusCode);
    const seconds = reply.elapsedTime / 1000;
    metrics.httpRequests.inc({ method: request.method, path, status });
    metrics.httpSeconds.observe({ method: request.method, path, status }, seconds);

    const prefix = path.startsWith('/function/') ? '/function/' : path.startsWith('/async-function/') && request.method === 'POST' ? '/async-function/' : undefined;
    if (!prefix || UNRESOLVED.has(reply.statusCode)) return;
    // A progress report names a call id, not a function: no invocation, and no label per call id.
    if (prefix === '/async-function/' && progressTargetOf(request.raw.url)) return;
    const fn = functionNameOf(request.url, prefix, defaultNamespace);
    if (!fn) return;
    metrics.started.inc({ function_name: fn });
    metrics.invocations.inc({ function_name: fn, code: status });
    metrics.seconds.observe({ function_name: fn, code: status }, seconds);
  };
  // A callback hook: an async one costs a promise on every response.
  app.addHook('onResponse', (request, reply, done) => {
    count(request, reply);
    done();
  });
}
