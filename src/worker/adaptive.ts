import { AdaptiveLimit } from '../../actors/adaptive-limit.js';
import { QUEUE_LANE, type SettlementReport } from '../../actors/queue.supervisor.js';
import { parseRetryAfterMs } from '../../actors/retry.policy.js';
import { adaptiveSignal } from '../../actors/throttle.policy.js';
import type { FunctionLabel } from '../telemetry/function-labels.js';
import type { FlowControlMetrics } from '../telemetry/metrics.js';
import { laneGroup } from './lanes.js';

/**
 * Adaptive concurrency per function on one worker (adaptive_concurrency): each function without a
 * fixed `max_inflight` annotation gets an AIMD limit (actors/adaptive-limit.ts) that its lanes'
 * group limit follows; every settlement feeds it (success raises, a throttle lowers). The queue's
 * own lane (its plain subject, every function mixed) has no limit of its own.
 */
export interface AdaptiveLimits {
  /** The group's limit on this worker: its fixed limit, else its adaptive one, else none (Infinity). */
  limit(group: string): number;
  /** Feeds one settlement; returns true when the limit rose (time to pull again). */
  settled(report: SettlementReport, running: number): boolean;
}

export function adaptiveLimits(opts: {
  readonly enabled: boolean;
  /** The queue's max_inflight: no function's limit goes above it. */
  readonly max: number;
  /** Functions with a fixed limit (their annotation): never adapted. */
  readonly fixed: ReadonlyMap<string, number>;
  readonly queueName: string;
  readonly metrics: Pick<FlowControlMetrics, 'concurrencyLimit'> & { readonly functionLabel: FunctionLabel };
}): AdaptiveLimits {
  const limits = new Map<string, AdaptiveLimit>();
  const limiterOf = (group: string): AdaptiveLimit => {
    let limiter = limits.get(group);
    if (!limiter) {
      // No slow start: a function starts at the queue's full max_inflight, as without adaptation.
      limiter = new AdaptiveLimit({ max: opts.max, slowStart: false });
      limits.set(group, limiter);
      opts.metrics.concurrencyLimit.set({ queue_name: opts.queueName, function_name: opts.metrics.functionLabel(group.slice(0, group.indexOf('.'))) }, limiter.limit);
    }
    return limiter;
  };
  return {
    limit(group) {
      const fixed = opts.fixed.get(group);
      if (fixed !== undefined) return fixed;
      if (!opts.enabled || group === QUEUE_LANE) return Infinity;
      return limiterOf(group).limit;
    },
    settled(report, running) {
      if (!opts.enabled || report.lane === QUEUE_LANE) return false;
      const group = laneGroup({ name: report.invocation.functionName, namespace: report.invocation.namespace });
      if (opts.fixed.has(group)) return false;
      const signal = adaptiveSignal(report);
      if (signal === 'none' || report.outcome === undefined) return false;
      const limiter = limiterOf(group);
      const before = limiter.limit;
      const call = { startedAt: report.outcome.startedAtMs, inflight: running + 1 };
      if (signal === 'success') limiter.onSuccess(call);
      else limiter.onThrottle({ ...call, retryAfterMs: parseRetryAfterMs(report.outcome.retryAfter, Date.now()) });
      if (limiter.limit !== before)
        opts.metrics.concurrencyLimit.set({ queue_name: opts.queueName, function_name: opts.metrics.functionLabel(report.invocation.functionName) }, limiter.limit);
      return limiter.limit > before;
    },
  };
}
