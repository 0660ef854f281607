import type { FunctionOutcome, InvocationSettings, MessageHandle } from '../../actors/invocation.types.js';
import type { RetryPolicy } from '../../actors/retry.policy.js';

/**
 * Fakes for the machine tests (test/unit/actors): retry policies, outcomes, the MessageHandle port
 * and the per-delivery settings. Each test keeps its own scenario runner; these are the pieces
 * they all built the same way.
 */

/** OpenFaaS CE behaviour: one attempt, the outcome goes to the callback whatever it is. */
export const NO_RETRIES: RetryPolicy = Object.freeze({
  maxAttempts: 1,
  retryStatuses: new Set<number>(),
  initialWaitMs: 0,
  maxWaitMs: 0,
  mode: 'exponential',
});

/** OpenFaaS Pro's queue-worker defaults. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 10,
  retryStatuses: new Set([408, 429, 500, 502, 503, 504]),
  initialWaitMs: 10_000,
  maxWaitMs: 120_000,
  mode: 'exponential',
});

/** Three attempts, 502 retried, exponential from 100 ms up to `maxWaitMs` (default 10 s). */
export function retryOn502(maxWaitMs = 10_000): RetryPolicy {
  return { maxAttempts: 3, retryStatuses: new Set([502]), initialWaitMs: 100, maxWaitMs, mode: 'exponential' };
}

/** A function's answer with the body `status <status>`; started at 1 ms, took 2 ms unless `extra` says otherwise. */
export function fakeOutcome(status: number, extra: Partial<FunctionOutcome> = {}): FunctionOutcome {
  return { status, body: new TextEncoder().encode(`status ${status}`), startedAtMs: 1, durationMs: 2, ...extra };
}

/** What a recording handle does besides recording. */
export interface HandleHooks {
  /** The answer of `ackAck()` (default: confirmed). */
  readonly ackAck?: () => Promise<void>;
  /** Awaited by `nakConfirmed()` after recording it. */
  readonly nakConfirmed?: () => Promise<void>;
}

/**
 * The MessageHandle port recording every call, in order, into `calls`: `working`, `nak(<ms>)`,
 * `nakConfirmed(<ms>)`, `term`, `ackAck`. Pass `calls` to log them with other effects.
 */
export function recordingHandle(deliveryCount = 1, hooks: HandleHooks = {}, calls: string[] = []): { handle: MessageHandle; calls: string[] } {
  const handle: MessageHandle = {
    deliveryCount,
    working: () => void calls.push('working'),
    nak: (delayMs) => void calls.push(`nak(${delayMs})`),
    nakConfirmed: async (delayMs) => {
      calls.push(`nakConfirmed(${delayMs})`);
      await hooks.nakConfirmed?.();
    },
    term: () => void calls.push('term'),
    ackAck: () => {
      calls.push('ackAck');
      return hooks.ackAck ? hooks.ackAck() : Promise.resolve();
    },
  };
  return { handle, calls };
}

/** A MessageHandle that confirms every ack and nak and tells only of those (`on.ack`, `on.nak`). */
export function quietHandle(deliveryCount = 1, on: { readonly ack?: () => void; readonly nak?: () => void } = {}): MessageHandle {
  return {
    deliveryCount,
    working: () => undefined,
    nak: () => undefined,
    nakConfirmed: async () => void on.nak?.(),
    term: () => undefined,
    ackAck: async () => void on.ack?.(),
  };
}

/** The settings of a delivery with nothing special about it at `nowMs`; `random` is unused by 'exponential'. */
export function deliverySettings(policy: RetryPolicy, nowMs: number, extra: Partial<InvocationSettings> = {}): InvocationSettings {
  return { policy, cancelRequested: false, nowMs, random: () => 0.5, deadLetterNonRetryable: false, ...extra };
}
