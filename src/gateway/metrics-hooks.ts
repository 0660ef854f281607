import type { FastifyInstance } from 'fastify';
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

/** Counts one answered request: its route pattern, and the invocation it was, if any. */
export type ResponseCounter = (request: { readonly method: string; readonly url: string }, routePath: string, statusCode: number, seconds: number) => void;

/**
 * Counts every request by route pattern (bounded labels) and every invocation by function and
 * status, the OpenFaaS way: `code` is the function's status for sync calls, 202 for async ones.
 */
export function responseCounter(metrics: GatewayMetrics, defaultNamespace: string): ResponseCounter {
  return (request, path, statusCode, seconds) => {
    const status = String(statusCode);
    metrics.httpRequests.inc({ method: request.method, path, status });
    metrics.httpSeconds.observe({ method: request.method, path, status }, seconds);

    const prefix = path.startsWith('/function/') ? '/function/' : path.startsWith('/async-function/') && request.method === 'POST' ? '/async-function/' : undefined;
    if (!prefix || UNRESOLVED.has(statusCode)) return;
    // A progress report names a call id, not a function: no invocation, and no label per call id.
    if (prefix === '/async-function/' && progressTargetOf(request.url)) return;
    const fn = functionNameOf(request.url, prefix, defaultNamespace);
    if (!fn) return;
    metrics.started.inc({ function_name: fn });
    metrics.invocations.inc({ function_name: fn, code: status });
    metrics.seconds.observe({ function_name: fn, code: status }, seconds);
  };
}

/** Serves `/metrics` and counts every response fastify answers; returns the counter, for answers written without fastify. */
export function installMetrics(app: FastifyInstance, registry: Registry, metrics: GatewayMetrics, defaultNamespace: string): ResponseCounter {
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  const count = responseCounter(metrics, defaultNamespace);
  // A callback hook: an async one costs a promise on every response.
  app.addHook('onResponse', (request, reply, done) => {
    count(request, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  return count;
}
