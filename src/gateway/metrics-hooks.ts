import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { CounterChild, HistogramChild } from '../telemetry/bound-metrics.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The function this request started an invocation of, once the registry resolved it (see
     * `InvocationCounter.started`); undefined for any other request, which no invocation metric counts.
     */
    invokedFunction: string | undefined;
  }
}

/**
 * Counts one answered request: its route pattern, and the invocation it started, if any. An
 * invocation is one whose function the registry resolved (`functionName`, counted `started` then):
 * a request answered before that (a 404, a 400, a 503 while NATS is down, …) names no function of
 * the registry, only the caller's word, and is counted by route alone.
 */
export type ResponseCounter = (
  request: { readonly method: string; readonly url: string },
  routePath: string,
  statusCode: number,
  seconds: number,
  functionName?: string,
) => void;

/**
 * The gateway's invocation metrics: a `ResponseCounter`, and `started`, called as an invocation
 * starts (its function resolved), as OpenFaaS counts `gateway_function_invocation_started` before
 * the call, so `started − total` is the invocations in flight.
 */
export type InvocationCounter = ResponseCounter & { readonly started: (functionName: string) => void };

/** The bound children of one label set: a count and a duration. */
interface Series {
  readonly count: CounterChild;
  readonly seconds: HistogramChild;
}

/**
 * Counts every request by route pattern (bounded labels) and every invocation by function and
 * status, the OpenFaaS way: `code` is the function's status for sync calls, 202 for async ones.
 * Each label set's children are looked up once (bound-metrics.ts); a request adds to them. A
 * function's label is `metrics.functionLabel`'s, taken as its children are made: past the cap, the
 * name finds `_other`'s children and adds no key of its own.
 */
export function responseCounter(metrics: GatewayMetrics): InvocationCounter {
  const routes = new Map<string, Series>();
  const functions = new Map<string, Series>();
  const starts = new Map<string, CounterChild>();
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
  const functionSeries = (fn: string, statusCode: number): Series => {
    const series = functions.get(`${statusCode} ${fn}`);
    if (series !== undefined) return series;
    const label = metrics.functionLabel(fn);
    const key = `${statusCode} ${label}`;
    let labelled = functions.get(key);
    if (labelled === undefined) {
      const labels = { function_name: label, code: String(statusCode) };
      labelled = { count: metrics.invocations.child(labels), seconds: metrics.seconds.child(labels) };
      functions.set(key, labelled);
    }
    return labelled;
  };
  const startSeries = (fn: string): CounterChild => {
    const child = starts.get(fn);
    if (child !== undefined) return child;
    const label = metrics.functionLabel(fn);
    let labelled = starts.get(label);
    if (labelled === undefined) {
      labelled = metrics.started.child({ function_name: label });
      starts.set(label, labelled);
    }
    return labelled;
  };

  const count: ResponseCounter = (request, path, statusCode, seconds, functionName) => {
    const route = routeSeries(request.method, path, statusCode);
    route.count.inc();
    route.seconds.observe(seconds);
    if (functionName === undefined) return;
    const invocation = functionSeries(functionName, statusCode);
    invocation.count.inc();
    invocation.seconds.observe(seconds);
  };
  return Object.assign(count, { started: (functionName: string) => startSeries(functionName).inc() });
}

/**
 * Serves `/metrics` (`readMetrics`' text: the registry's, or with `gateway_processes` > 1 every
 * process's, cluster-metrics.ts) and counts every response fastify answers; returns the counter,
 * for answers written without fastify and for the routes' starts.
 */
export function installMetrics(
  app: FastifyInstance,
  registry: Registry,
  metrics: GatewayMetrics,
  readMetrics: () => Promise<string> = () => registry.metrics(),
): InvocationCounter {
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await readMetrics()));
  // Set by the invocation routes once the function is resolved.
  app.decorateRequest('invokedFunction', undefined);
  const count = responseCounter(metrics);
  // A callback hook: an async one costs a promise on every response.
  app.addHook('onResponse', (request, reply, done) => {
    count(request, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000, request.invokedFunction);
    done();
  });
  return count;
}
