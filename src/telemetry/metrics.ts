import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { BoundCounter, BoundHistogram } from './bound-metrics.js';
import { functionLabels, OTHER_FUNCTIONS_LABEL, type FunctionLabel } from './function-labels.js';

/**
 * Metric names and labels follow the OpenFaaS gateway and queue-worker, so their dashboards keep
 * working; asyncfn's own metrics start with `asyncfn_`. Labels are bounded: function names come
 * from the registry and pass one `FunctionLabel` per process (function-labels.ts: the first names
 * counted, then `_other`), statuses are HTTP codes, paths are route patterns; never a call id.
 */

/**
 * A process's function labels (function-labels.ts): the first `cap` names, then `_other`, with one
 * warning as the cap is reached.
 */
export function functionLabelsFor(cap: number, logger: { warn(obj: object, msg: string): void }): FunctionLabel {
  return functionLabels(cap, (_, name) =>
    logger.warn(
      { metricsFunctionNames: cap, function: name },
      `metrics: ${cap} function names labelled (metrics_function_names); this one and every later one are counted as function_name="${OTHER_FUNCTIONS_LABEL}"`,
    ),
  );
}

/** Seconds buckets from 5 ms to 2 h: HTTP calls and long batch jobs on one scale. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200];

export function createRegistry(component: 'gateway' | 'worker'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The gateway's metrics. The ones updated on every request are bound (bound-metrics.ts): the
 * response counter looks a child up once per label set, and a request adds to it.
 */
export function gatewayMetrics(registry: Registry, functionLabel: FunctionLabel = functionLabels()) {
  return {
    /** The `function_name` of a function's name: every function_name label goes through it. */
    functionLabel,
    /** OpenFaaS: every invocation through the gateway, sync (function status) or async (202). */
    invocations: new BoundCounter({
      name: 'gateway_function_invocation_total',
      help: 'Function invocations through the gateway',
      labelNames: ['function_name', 'code'] as const,
      registers: [registry],
    }),
    /** OpenFaaS: sync call duration; for async, the time to store the request (PubAck). */
    seconds: new BoundHistogram({
      name: 'gateway_functions_seconds',
      help: 'Gateway time per invocation (sync: the call; async: until PubAck)',
      labelNames: ['function_name', 'code'] as const,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    started: new BoundCounter({
      name: 'gateway_function_invocation_started',
      help: 'Invocations the gateway started handling',
      labelNames: ['function_name'] as const,
      registers: [registry],
    }),
    natsReconnects: new Counter({
      name: 'gateway_nats_reconnect_total',
      help: 'Reconnections of the gateway to NATS',
      registers: [registry],
    }),
    httpRequests: new BoundCounter({
      name: 'http_requests_total',
      help: 'HTTP requests served, by route pattern',
      labelNames: ['method', 'path', 'status'] as const,
      registers: [registry],
    }),
    httpSeconds: new BoundHistogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration, by route pattern',
      labelNames: ['method', 'path', 'status'] as const,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;

/** One invocation in flight, as the inflight gauge counts it. */
export interface InFlightSample {
  readonly queue: string;
  readonly functionName: string;
}

/** Where a late delivery found its invocation (`asyncfn_late_deliveries_total`'s `where`). */
export const LATE_DELIVERY_PLACES = ['runningHere', 'heldElsewhere', 'settled'] as const;

/**
 * The worker's metrics. `inFlight` lists the invocations in flight now, from the supervisors'
 * registries: the inflight gauge reads it at each scrape, so no count is kept beside the registry
 * and nothing is counted per invocation for it.
 */
export function workerMetrics(registry: Registry, inFlight: () => Iterable<InFlightSample> = () => [], functionLabel: FunctionLabel = functionLabels()) {
  const invocations = new BoundCounter({
    name: 'asyncfn_invocations_total',
    help: 'Settled invocation attempts by outcome (succeeded, failed, retrying, cancelled, deadLettered)',
    labelNames: ['queue_name', 'function_name', 'outcome'] as const,
    registers: [registry],
  });
  /**
   * Label sets seen: a function reads 0 once nothing of it is in flight any more, not absent, from
   * its first settled invocation (the settlements counter's label sets) or its first scrape in flight.
   */
  const seen = new Map<string, InFlightSample>();
  const see = (queue: string, functionName: string): string => {
    const key = `${queue}\n${functionName}`;
    if (!seen.has(key)) seen.set(key, { queue, functionName });
    return key;
  };
  return {
    /** The `function_name` of a function's name: every function_name label goes through it. */
    functionLabel,
    /** OpenFaaS Pro: messages waiting in the queue's stream (not yet delivered, or delivered and unacked). */
    pending: new Gauge({
      name: 'queue_worker_pending_messages',
      help: 'Messages in the queue not yet settled (JetStream consumer num_pending + num_ack_pending)',
      labelNames: ['queue_name', 'function_name'] as const,
      registers: [registry],
    }),
    processed: new BoundCounter({
      name: 'queue_worker_messages_processed_total',
      help: 'Messages this worker settled (acked, cancelled, dead-lettered or scheduled for retry)',
      labelNames: ['queue_name'] as const,
      registers: [registry],
    }),
    submitted: new BoundCounter({
      name: 'queue_worker_messages_submitted_total',
      help: 'Messages delivered to this worker',
      labelNames: ['queue_name'] as const,
      registers: [registry],
    }),
    inflight: new Gauge({
      name: 'queue_worker_function_invocation_inflight',
      help: 'Invocations running on this worker',
      labelNames: ['queue_name', 'function_name'] as const,
      registers: [registry],
      async collect() {
        for (const { labels } of (await invocations.get()).values) see(String(labels.queue_name), String(labels.function_name));
        const counts = new Map<string, number>();
        for (const { queue, functionName } of inFlight()) {
          const key = see(queue, functionLabel(functionName));
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        for (const [key, { queue, functionName }] of seen) this.set({ queue_name: queue, function_name: functionName }, counts.get(key) ?? 0);
      },
    }),
    natsReconnects: new Counter({
      name: 'queue_worker_nats_reconnect_total',
      help: 'Reconnections of the worker to NATS',
      registers: [registry],
    }),
    invocations,
    retries: new Counter({
      name: 'asyncfn_retries_total',
      help: 'Attempts that failed and were scheduled again',
      labelNames: ['queue_name', 'function_name'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'asyncfn_dead_letters_total',
      help: 'Invocations and callbacks stored in the dead-letter stream, by reason',
      labelNames: ['queue_name', 'reason'] as const,
      registers: [registry],
    }),
    callbacks: new BoundCounter({
      name: 'asyncfn_callbacks_total',
      help: 'Callback deliveries by result (delivered, handedOff, retry, deadLettered, failed)',
      labelNames: ['queue_name', 'result'] as const,
      registers: [registry],
    }),
    ackExtensions: new Counter({
      name: 'asyncfn_ack_extensions_total',
      help: 'Ack deadlines extended (working) for long-running invocations',
      labelNames: ['queue_name'] as const,
      registers: [registry],
    }),
    lateDeliveries: new Counter({
      name: 'asyncfn_late_deliveries_total',
      help: 'Deliveries that came again after the ack deadline passed, by where the invocation was (runningHere, heldElsewhere: another worker answered for it, settled); none ran the function',
      labelNames: ['queue_name', 'where'] as const,
      registers: [registry],
    }),
    enqueueToStart: new BoundHistogram({
      name: 'asyncfn_enqueue_to_start_seconds',
      help: "Time from the gateway's PubAck to the first attempt's start",
      labelNames: ['queue_name'] as const,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    duration: new BoundHistogram({
      name: 'asyncfn_invocation_duration_seconds',
      help: 'Function call duration per attempt',
      labelNames: ['queue_name', 'function_name', 'status'] as const,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
  };
}

/**
 * Flow control per function (adaptive concurrency). Registered apart from workerMetrics, which is
 * the dashboards' contract (every metric there is on a Grafana panel with data): the limit gauge is
 * set by the per-function lanes, and joins the contract with them.
 */
export function flowControlMetrics(registry: Registry) {
  return {
    throttled: new Counter({
      name: 'queue_worker_throttled_total',
      help: 'Deliveries the function throttled (429, or 503 with Retry-After) that waited in JetStream without using an attempt',
      labelNames: ['queue_name', 'function_name'] as const,
      registers: [registry],
    }),
    concurrencyLimit: new Gauge({
      name: 'queue_worker_function_concurrency_limit',
      help: 'Invocations of a function this worker may run at once (the adaptive limit, or the fixed one)',
      labelNames: ['queue_name', 'function_name'] as const,
      registers: [registry],
    }),
  };
}

export type FlowControlMetrics = ReturnType<typeof flowControlMetrics>;

/** What the worker counts: the contract's metrics and flow control's. */
export type WorkerMetrics = ReturnType<typeof workerMetrics> & FlowControlMetrics;

/**
 * Batches (`POST /async-batch/<name>`). Registered apart from the dashboards' contract, as flow
 * control is: the gateway counts items, the worker (and, for a batch whose items all ended before
 * it was fully accepted, the gateway) counts completed batches.
 */
export function batchMetrics(registry: Registry, functionLabel: FunctionLabel = functionLabels()) {
  return {
    /** The `function_name` of a function's name: every function_name label goes through it. */
    functionLabel,
    /** outcome: `accepted` (stored), `refused` (the item that stopped its batch), `failed` (not stored: JetStream did not confirm it). */
    items: new Counter({
      name: 'asyncfn_batch_items_total',
      help: 'Batch items the gateway read, by outcome (accepted, refused, failed)',
      labelNames: ['function_name', 'outcome'] as const,
      registers: [registry],
    }),
    completed: new Counter({
      name: 'asyncfn_batches_completed_total',
      help: 'Batches this process saw done (every accepted item final) and completed (callback handed off, record done)',
      labelNames: ['function_name'] as const,
      registers: [registry],
    }),
  };
}

export type BatchMetrics = ReturnType<typeof batchMetrics>;
