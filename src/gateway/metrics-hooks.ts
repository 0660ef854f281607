import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { parseFunctionRef } from '../functions/index.js';
import type { CounterChild, HistogramChild } from '../telemetry/bound-metrics.js';
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
 * Counts one answered request: its route pattern, and the invocation it was, if any. A caller that
 * already read the function's name from the URL passes it (`functionName`), and it is not read again.
 */
export type ResponseCounter = (
  request: { readonly method: string; readonly url: string },
  routePath: string,
  statusCode: number,
  seconds: number,
  functionName?: string,
) => void;

/** The bound children of one label set: a count and a duration. */
interface Series {
  readonly count: CounterChild;
  readonly seconds: HistogramChild;
}

/**
 * Counts every request by route pattern (bounded labels) and every invocation by function and
 * status, the OpenFaaS way: `code` is the function's status for sync calls, 202 for async ones.
 * Each label set's children are looked up once (bound-metrics.ts); a request adds to them.
 */
export function responseCounter(metrics: GatewayMetrics, defaultNamespace: string): ResponseCounter {
  const routes = new Map<string, Series>();
  const functions = new Map<string, Series & { readonly started: CounterChild }>();
  const routeSeries = (method: string, path: string, statusCode: number): Series => {
    const key = `${statusCode} ${method} ${path}`;
    let series = routes.get(key);
    if (series === undefined) {
      const labels = { method, path, status: String(statusCode) };
      series = { count: metrics.httpRequests.child(labels), seconds: metrics.httpSeconds.child(labels) };
      routes.set(key, series);
    }
    return series;
  };
  const functionSeries = (fn: string, statusCode: number): Series & { readonly started: CounterChild } => {
    const key = `${statusCode} ${fn}`;
    let series = functions.get(key);
    if (series === undefined) {
      const labels = { function_name: fn, code: String(statusCode) };
      series = { started: metrics.started.child({ function_name: fn }), count: metrics.invocations.child(labels), seconds: metrics.seconds.child(labels) };
      functions.set(key, series);
    }
    return series;
  };

  return (request, path, statusCode, seconds, functionName) => {
    const route = routeSeries(request.method, path, statusCode);
    route.count.inc();
    route.seconds.observe(seconds);

    const prefix = path.startsWith('/function/') ? '/function/' : path.startsWith('/async-function/') && request.method === 'POST' ? '/async-function/' : undefined;
    if (!prefix || UNRESOLVED.has(statusCode)) return;
    // A progress report names a call id, not a function: no invocation, and no label per call id.
    if (functionName === undefined && prefix === '/async-function/' && progressTargetOf(request.url)) return;
    const fn = functionName ?? functionNameOf(request.url, prefix, defaultNamespace);
    if (!fn) return;
    const invocation = functionSeries(fn, statusCode);
    invocation.started.inc();
    invocation.count.inc();
    invocation.seconds.observe(seconds);
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
