import { isSuccess } from '../../actors/dead-letter.policy.js';
import type { SettlementReport, SupervisorEvents } from '../../actors/queue.supervisor.js';
import type { InvocationState } from '../status/records.js';
import { debugBodyFields, redactHeaders } from '../telemetry/debug-bodies.js';
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
  const kept = keptChildren();
  const count = settlementCounter(metrics, kept);
  return {
    started: (queue, invocation, attempt, state) => {
      const children = kept(`started\n${queue}`, () => ({
        submitted: metrics.submitted.child({ queue_name: queue }),
        enqueueToStart: metrics.enqueueToStart.child({ queue_name: queue }),
      }));
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
            query: invocation.query,
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
      const { invocation, attempt, settlement, outcome } = report;
      const fields = {
        callId: invocation.callId,
        function: invocation.functionName,
        namespace: invocation.namespace,
        attempt,
        traceId: traceIdOf(invocation.traceparent),
        settlement,
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
      for (const warning of report.policyWarnings) logger.warn({ callId: invocation.callId, function: invocation.functionName }, warning);
      if (report.ledgerError) logger.warn({ callId: invocation.callId, function: invocation.functionName, err: report.ledgerError }, 'attempt ledger unavailable');
      const waits = settlement === 'retryScheduled' || settlement === 'throttled';
      if (settlement === 'heldElsewhere' || settlement === 'stale') {
        metrics.lateDeliveries.inc({ queue_name: report.queue, where: settlement === 'stale' ? 'settled' : 'heldElsewhere' });
      }
      if (settlement === 'heldElsewhere') {
        logger.warn(
          { ...fields, heldBy: report.heldBy },
          'a delivery of an invocation another worker still runs (its ack_wait ran out there) was left to that worker: not run here',
        );
      } else if (settlement === 'stale') {
        logger.warn(
          fields,
          report.settleError
            ? 'a delivery of an invocation settled already was neither run nor acked: JetStream will deliver it again'
            : 'a delivery of an invocation settled already (sent before JetStream had its ack, or the ack was lost) was acked: not run again',
        );
      } else if (settlement === 'crashed' || (report.settleError && !waits)) {
        logger.warn(fields, 'invocation not settled; JetStream will deliver it again');
      } else if (report.settleError) logger.warn(fields, 'retry not confirmed; JetStream redelivers after ack_wait');
      else logger.info(fields, `invocation ${settlement}`);

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

/** Finds metric children by a key of the caller's (cheaper to build than the labels' own), each made on first use. */
type KeptChildren = <C>(key: string, make: () => C) => C;

/** Children kept for the life of the worker: one per label set seen (queues, functions, statuses: bounded). */
function keptChildren(): KeptChildren {
  const kept = new Map<string, unknown>();
  return <C>(key: string, make: () => C): C => {
    let child = kept.get(key) as C | undefined;
    if (child === undefined) kept.set(key, (child = make()));
    return child;
  };
}

/**
 * Counts settled deliveries. The children of each label set are found once and kept (bound-metrics.ts):
 * a settlement costs a few additions, not a hash of its labels per metric.
 */
function settlementCounter(metrics: WorkerMetrics, kept: KeptChildren): (report: SettlementReport, state: InvocationState | undefined) => void {
  return (report, state) => {
    const { queue, invocation, outcome, settlement } = report;
    const fn = invocation.functionName;
    // Not a settlement of an attempt: given back, crashed, a stale delivery of one settled already, or one running elsewhere.
    if (settlement === 'released' || settlement === 'crashed' || settlement === 'stale' || settlement === 'heldElsewhere') return;
    kept(`processed\n${queue}`, () => metrics.processed.child({ queue_name: queue })).inc();
    // A throttle is not an attempt: counted apart, not as a retrying attempt.
    if (settlement === 'throttled') metrics.throttled.inc({ queue_name: queue, function_name: fn });
    else if (state) kept(`invocations\n${queue}\n${fn}\n${state}`, () => metrics.invocations.child({ queue_name: queue, function_name: fn, outcome: state })).inc();
    if (settlement === 'retryScheduled') metrics.retries.inc({ queue_name: queue, function_name: fn });
    if (report.deadLetter) metrics.deadLetters.inc({ queue_name: queue, reason: report.deadLetter });
    // Only real function calls: a cancelled or expired invocation reports a made-up outcome.
    if (outcome && settlement !== 'cancelled' && report.deadLetter !== 'expired') {
      const status = outcome.status;
      kept(`duration\n${queue}\n${fn}\n${status}`, () => metrics.duration.child({ queue_name: queue, function_name: fn, status: String(status) })).observe(
        outcome.durationMs / 1000,
      );
    }
    if (invocation.callbackUrl && outcome && settlement !== 'retryScheduled' && settlement !== 'throttled') {
      const result = report.callbackError ? 'handedOff' : 'delivered';
      kept(`callbacks\n${queue}\n${result}`, () => metrics.callbacks.child({ queue_name: queue, result })).inc();
    }
  };
}
