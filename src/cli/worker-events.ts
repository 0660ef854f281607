import { isSuccess } from '../../actors/dead-letter.policy.js';
import type { Invocation } from '../../actors/invocation.types.js';
import type { SettlementReport, SupervisorEvents } from '../../actors/queue.supervisor.js';
import type { InvocationRecord, InvocationState, RecordStore } from '../status/records.js';
import type { Logger } from '../telemetry/logger.js';

/** The record state a settlement leaves, or undefined when the invocation is not settled yet. */
export function recordStateOf(report: SettlementReport): InvocationState | undefined {
  switch (report.settlement) {
    case 'retryScheduled':
      return 'retrying';
    case 'cancelled':
      return 'cancelled';
    case 'deadLettered':
      return 'deadLettered';
    case 'acked':
      return report.outcome && isSuccess(report.outcome) ? 'succeeded' : 'failed';
    default:
      // released, ackFailed, unsettled, crashed: JetStream delivers it again.
      return undefined;
  }
}

function baseRecord(queue: string, invocation: Invocation): Pick<InvocationRecord, 'callId' | 'function' | 'namespace' | 'queue' | 'enqueuedAtMs'> {
  return { callId: invocation.callId, function: invocation.functionName, namespace: invocation.namespace, queue, enqueuedAtMs: invocation.enqueuedAtMs };
}

/**
 * Logs every state an invocation passes through (debug) and its settlement (info, or warn when
 * something went wrong), each line with call id, function, queue and attempt; keeps its record.
 */
export function supervisorEvents(logger: Logger, records: RecordStore, writeDebug: boolean): SupervisorEvents {
  const decoder = new TextDecoder();
  const started = new Map<string, number>();
  const save = (record: InvocationRecord): void => {
    records.put(record).catch((err: unknown) => logger.warn({ err, callId: record.callId }, 'could not write the invocation record'));
  };
  return {
    transition: (queue, invocation, state, attempt) => {
      logger.debug({ callId: invocation.callId, function: invocation.functionName, queue, attempt, state }, `invocation ${state}`);
      if (state === 'invoking') {
        const startedAtMs = Date.now();
        started.set(invocation.callId, startedAtMs);
        save({ ...baseRecord(queue, invocation), state: 'running', attempts: attempt, startedAtMs });
      }
    },
    settled: (report) => {
      const { invocation, attempt, settlement, outcome } = report;
      const fields = {
        callId: invocation.callId,
        function: invocation.functionName,
        namespace: invocation.namespace,
        queue: report.queue,
        attempt,
        settlement,
        status: outcome?.status,
        durationMs: outcome ? Math.round(outcome.durationMs) : undefined,
        error: outcome?.transportError,
        deadLetter: report.deadLetter,
        callbackError: report.callbackError,
        settleError: report.settleError,
        ...(writeDebug && outcome ? { responseBody: decoder.decode(outcome.body) } : {}),
      };
      for (const warning of report.policyWarnings) logger.warn({ callId: invocation.callId, function: invocation.functionName }, warning);
      if (settlement === 'crashed' || (report.settleError && settlement !== 'retryScheduled')) {
        logger.warn(fields, 'invocation not settled; JetStream will deliver it again');
      } else if (report.settleError) logger.warn(fields, 'retry not confirmed; JetStream redelivers after ack_wait');
      else logger.info(fields, `invocation ${settlement}`);

      const state = recordStateOf(report);
      const startedAtMs = started.get(invocation.callId);
      started.delete(invocation.callId);
      if (state === undefined) return;
      save({
        ...baseRecord(report.queue, invocation),
        state,
        attempts: attempt,
        status: outcome?.status,
        startedAtMs,
        finishedAtMs: state === 'retrying' ? undefined : Date.now(),
        error: outcome?.transportError ?? report.callbackError,
      });
    },
    poison: (queue, reasons) => logger.error({ queue, reasons }, 'dead-lettering an undecodable message'),
    pullFailed: (queue, error) => logger.warn({ queue, err: error }, 'pull request failed; retrying'),
  };
}
