import { isSuccess } from '../../actors/dead-letter.policy.js';
import type { SettlementReport, SupervisorEvents } from '../../actors/queue.supervisor.js';
import type { InvocationState } from '../status/records.js';
import type { CounterChild, HistogramChild } from '../telemetry/bound-metrics.js';
import { debugBodyFields, redactHeaders, redactQuery } from '../telemetry/debug-bodies.js';
import type { Logger } from '../telemetry/logger.js';
import type { WorkerMetrics } from '../telemetry/metrics.js';
import { traceIdOf } from '../telemetry/tracing.js';

/** The record state a settlement leaves, or undefined when the invocation is not settled yet. */
export function recordStateOf(report: SettlementReport): InvocationState | undefined {
  switch (report.settlement) {
    case 'retryScheduled':
    case 'throttled':
      return 'retrying';
    case 'cancelled':
      return 'cancelled';
    case 'deadLettered':
      return 'deadLettered';
    case 'acked':
      return report.outcome && isSuccess(report.outcome) ? 'succeeded' : 'failed';
    default:
      // released, ackFailed, unsettled, crashed: JetStream delivers it again; stale: recorded already;
      // heldElsewhere: another worker runs it and records it.
      return undefined;
  }
}

/**
 * Logs every state an invocation passes through (debug) and its settlement (info, or warn when
 * something went wrong), each line with call id, function, queue and attempt, and counts it.
 * `logger` is the queue's own (bound to `queue` by src/worker/queue.ts, serialised once): the
 * lines here do not add `queue` again, since pino writes a key bound and logged twice.
 * It observes and writes no state: the machine records the invocation (src/worker/records.ts).
 * With `writeDebug` (OpenFaaS `write_debug`) the request as the function gets it and the
 * function's response body are logged at info level, bounded, with secret headers redacted.
 */
export function supervisorEvents(logger: Logger, writeDebug: boolean, metrics: WorkerMetrics): SupervisorEvents {
  const childrenOf = queueChildren(metrics);
  const count = settlementCounter(metrics, childrenOf);
  return {
    started: (queue, invocation, attempt, state) => {
      const children = childrenOf(queue);
      children.submitted.inc();
      // A redelivery records its attempt in the ledger first, then invokes.
      if (state !== 'invoking' && state !== 'recordingAttempt') return;
      if (writeDebug) {
        logger.info(
          {
            callId: invocation.callId,
            function: invocation.functionName,
            attempt,
            traceId: traceIdOf(invocation.traceparent),
            method: invocation.method,
            path: invocation.path,
            query: redactQuery(invocation.query),
            headers: redactHeaders(invocation.headers),
            ...debugBodyFields('request', invocation.body),
          },
          'invocation request',
        );
      }
      if (attempt === 1) children.enqueueToStart.observe(Math.max(0, Date.now() - invocation.enqueuedAtMs) / 1000);
    },
    extended: (queue, count) => metrics.ackExtensions.inc({ queue_name: queue }, count),
    // Every state change costs an inspection of each microstep: only when debug lines are written.
    transition: logger.isLevelEnabled('debug')
      ? (_queue, invocation, state, attempt) => {
          const traceId = traceIdOf(invocation.traceparent);
          logger.debug({ callId: invocation.callId, function: invocation.functionName, attempt, traceId, state }, `invocation ${state}`);
        }
      : undefined,
    settled: (report) => {
      const { invocation, settlement } = report;
      for (const warning of report.policyWarnings) logger.warn({ callId: invocation.callId, function: invocation.functionName }, warning);
      if (report.ledgerError) logger.warn({ callId: invocation.callId, function: invocation.functionName, err: report.ledgerError }, 'attempt ledger unavailable');
      const waits = settlement === 'retryScheduled' || settlement === 'throttled';
      if (settlement === 'heldElsewhere' || settlement === 'stale') {
        metrics.lateDeliveries.inc({ queue_name: report.queue, where: settlement === 'stale' ? 'settled' : 'heldElsewhere' });
      }
      if (settlement === 'heldElsewhere') {
        logger.warn(
          { ...settlementFields(report, writeDebug), heldBy: report.heldBy },
          'a delivery of an invocation another worker still runs (its ack_wait ran out there) was left to that worker: not run here',
        );
      } else if (settlement === 'stale') {
        logger.warn(
          settlementFields(report, writeDebug),
          report.settleError
            ? 'a delivery of an invocation settled already was neither run nor acked: JetStream will deliver it again'
            : 'a delivery of an invocation settled already (sent before JetStream had its ack, or the ack was lost) was acked: not run again',
        );
      } else if (settlement === 'crashed' || (report.settleError && !waits)) {
        logger.warn(settlementFields(report, writeDebug), 'invocation not settled; JetStream will deliver it again');
      } else if (report.settleError) logger.warn(settlementFields(report, writeDebug), 'retry not confirmed; JetStream redelivers after ack_wait');
      // The line of nearly every invocation: its fields are gathered only when it is written.
      else if (logger.isLevelEnabled('info')) logger.info(settlementFields(report, writeDebug), `invocation ${settlement}`);

      count(report, recordStateOf(report));
    },
    poison: (queue, reasons) => {
      metrics.deadLetters.inc({ queue_name: queue, reason: 'poison' });
      logger.error({ reasons }, 'dead-lettering an undecodable message');
    },
    pullFailed: (_queue, error) => logger.warn({ err: error }, 'pull request failed; retrying'),
    duplicate: (queue, invocation) => {
      metrics.lateDeliveries.inc({ queue_name: queue, where: 'runningHere' });
      logger.warn(
        { callId: invocation.callId, function: invocation.functionName },
        'a second delivery of an invocation running here (its ack_wait ran out) was kept under the running attempt, its ack deadline extended: not an attempt',
      );
    },
  };
}

/** A settlement's log fields: call id, function, attempt, trace, how it ended and why. */
function settlementFields(report: SettlementReport, writeDebug: boolean): Record<string, unknown> {
  const { invocation, outcome } = report;
  return {
    callId: invocation.callId,
    function: invocation.functionName,
    namespace: invocation.namespace,
    attempt: report.attempt,
    traceId: traceIdOf(invocation.traceparent),
    settlement: report.settlement,
    status: outcome?.status,
    durationMs: outcome ? Math.round(outcome.durationMs) : undefined,
    error: outcome?.transportError,
    deadLetter: report.deadLetter,
    // Only when there were some: most invocations are never throttled.
    throttled: report.throttledDeliveries || undefined,
    callbackError: report.callbackError,
    settleError: report.settleError,
    ...(writeDebug && outcome ? { responseContentType: outcome.contentType, ...debugBodyFields('response', outcome.body) } : {}),
  };
}

/** A function's children and the label they carry. */
interface ByLabel<K, V> {
  readonly label: string;
  readonly children: Map<K, V>;
}

/**
 * One queue's metric children, each made on first use and kept for the life of the worker (one per
 * label set seen: function labels, states, statuses are bounded). Found through maps keyed by each label
 * in turn, so a settlement builds no key string and hashes no labels (bound-metrics.ts).
 */
interface QueueChildren {
  readonly submitted: CounterChild;
  readonly enqueueToStart: HistogramChild;
  readonly processed: CounterChild;
  /** By function (its name, or `_other` past the cap: keptForFunction), then state. */
  readonly invocations: Map<string, ByLabel<InvocationState, CounterChild>>;
  /** By function, then status. */
  readonly duration: Map<string, ByLabel<number, HistogramChild>>;
  /** By result: delivered, handedOff or deadLettered. */
  readonly callbacks: Map<string, CounterChild>;
}

function queueChildren(metrics: WorkerMetrics): (queue: string) => QueueChildren {
  const byQueue = new Map<string, QueueChildren>();
  return (queue) => {
    let children = byQueue.get(queue);
    if (children === undefined) {
      const queue_name = queue;
      children = {
        submitted: metrics.submitted.child({ queue_name }),
        enqueueToStart: metrics.enqueueToStart.child({ queue_name }),
        processed: metrics.processed.child({ queue_name }),
        invocations: new Map(),
        duration: new Map(),
        callbacks: new Map(),
      };
      byQueue.set(queue, children);
    }
    return children;
  };
}

/** The value under `key` in `map`, made by `make` on first use. */
function keptIn<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}

/** What became of a settled invocation's callback (asyncfn_callbacks_total's `result`). */
function callbackResultOf(report: SettlementReport): 'delivered' | 'handedOff' | 'deadLettered' {
  if (report.deadLetter === 'callbackFailed') return 'deadLettered';
  return report.callbackError ? 'handedOff' : 'delivered';
}

/**
 * The value of function `fn` in `map`, kept under its label (`functionLabel`): past the cap
 * `_other`'s, and `fn` adds no key, so the map stays as bounded as the label.
 */
function keptForFunction<V>(map: Map<string, V>, fn: string, functionLabel: (name: string) => string, make: (label: string) => V): V {
  const value = map.get(fn);
  if (value !== undefined) return value;
  const label = functionLabel(fn);
  return keptIn(map, label, () => make(label));
}

/**
 * Counts settled deliveries on the queue's kept children: a settlement costs a few map lookups and
 * additions, not a hash of its labels per metric.
 */
function settlementCounter(metrics: WorkerMetrics, childrenOf: (queue: string) => QueueChildren): (report: SettlementReport, state: InvocationState | undefined) => void {
  return (report, state) => {
    const { queue, invocation, outcome, settlement } = report;
    const fn = invocation.functionName;
    // Not a settlement of an attempt: given back, crashed, a stale delivery of one settled already, or one running elsewhere.
    if (settlement === 'released' || settlement === 'crashed' || settlement === 'stale' || settlement === 'heldElsewhere') return;
    const children = childrenOf(queue);
    children.processed.inc();
    // A throttle is not an attempt: counted apart, not as a retrying attempt.
    if (settlement === 'throttled') metrics.throttled.inc({ queue_name: queue, function_name: metrics.functionLabel(fn) });
    else if (state) {
      const byState = keptForFunction(children.invocations, fn, metrics.functionLabel, (label) => ({ label, children: new Map<InvocationState, CounterChild>() }));
      keptIn(byState.children, state, () => metrics.invocations.child({ queue_name: queue, function_name: byState.label, outcome: state })).inc();
    }
    if (settlement === 'retryScheduled') metrics.retries.inc({ queue_name: queue, function_name: metrics.functionLabel(fn) });
    if (report.deadLetter) metrics.deadLetters.inc({ queue_name: queue, reason: report.deadLetter });
    // Only real function calls: a cancelled or expired invocation reports a made-up outcome.
    if (outcome && settlement !== 'cancelled' && report.deadLetter !== 'expired') {
      const { status } = outcome;
      const byStatus = keptForFunction(children.duration, fn, metrics.functionLabel, (label) => ({ label, children: new Map<number, HistogramChild>() }));
      keptIn(byStatus.children, status, () => metrics.duration.child({ queue_name: queue, function_name: byStatus.label, status: String(status) })).observe(
        outcome.durationMs / 1000,
      );
    }
    // Unsettled: the invocation comes back, and its callback with it; neither delivered nor handed off.
    if (invocation.callbackUrl && outcome && settlement !== 'retryScheduled' && settlement !== 'throttled' && settlement !== 'unsettled') {
      const result = callbackResultOf(report);
      keptIn(children.callbacks, result, () => metrics.callbacks.child({ queue_name: queue, result })).inc();
    }
  };
}
