import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { DeadLetterFilter } from '../dead-letters/filters.js';
import { boundsOrNone, matchDeadLetters, replayDeadLetters } from '../dead-letters/replay-many.js';
import { QueueUnavailableError } from '../queue/errors.js';
import { cancelInvocations, scanInvocations } from '../status/bulk-cancel.js';
import type { CancellationRequests } from '../status/cancellations.js';
import type { InvocationFilter } from '../status/filters.js';
import { describeError } from '../errors.js';

/** What `POST /system/invocations/cancel` answers. */
export interface BulkCancelResult {
  readonly matched: number;
  readonly cancelled: number;
  readonly dryRun: boolean;
  /** Matches by state and by `name.namespace`. */
  readonly byState: Readonly<Record<string, number>>;
  readonly byFunction: Readonly<Record<string, number>>;
}

/** What `POST /system/dead-letters/replay` answers. */
export interface BulkReplayResult {
  readonly matched: number;
  readonly replayed: number;
  /** Poison messages (not replayable) and dead letters deleted meanwhile. */
  readonly skipped: number;
  readonly dryRun: boolean;
}

/** The gateway's bulk operations by filter, behind the /system routes. */
export interface BulkOperations {
  cancelInvocations(filter: InvocationFilter, opts: { dryRun: boolean }): Promise<BulkCancelResult>;
  replayDeadLetters(filter: DeadLetterFilter, opts: { dryRun: boolean }): Promise<BulkReplayResult>;
}

export interface BulkOperationsDeps {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly cancellations: CancellationRequests;
  /** How long to wait for each replay's PubAck; ms (`publish_timeout`). */
  readonly publishTimeoutMs: number;
  /** Unix ms. */
  readonly now: () => number;
}

/**
 * The same scan and marker writes as `asyncfn cancel` (src/status/bulk-cancel.ts) and the same
 * replay as `asyncfn dlq replay` (src/dead-letters/replay-many.ts). A partial failure is a 503
 * that says how far it got: both are safe to repeat (a marker written twice is harmless; a
 * replayed dead letter is deleted after its PubAck, so a repeat does not replay it again).
 */
export function bulkOperations(deps: BulkOperationsDeps): BulkOperations {
  return {
    async cancelInvocations(filter, { dryRun }) {
      const matches = await scanInvocations(deps.js, filter);
      const matched = matches.callIds.length;
      const base = { matched, dryRun, byState: matches.byState, byFunction: matches.byFunction };
      if (dryRun) return { ...base, cancelled: 0 };
      const outcome = await cancelInvocations(deps.cancellations, matches);
      if (outcome.failed > 0) {
        throw new QueueUnavailableError(
          `cancelled ${outcome.cancelled} of ${matched}; ${outcome.failed} cancellations could not be written (repeat the request): ${describeError(outcome.firstError)}`,
        );
      }
      return { ...base, cancelled: outcome.cancelled };
    },
    async replayDeadLetters(filter, { dryRun }) {
      const bounds = await boundsOrNone(deps.jsm);
      const { seqs } = await matchDeadLetters(deps, filter, bounds);
      if (dryRun) return { matched: seqs.length, replayed: 0, skipped: 0, dryRun };
      const outcome = await replayDeadLetters(deps, seqs, { keep: false, publishTimeoutMs: deps.publishTimeoutMs, now: deps.now });
      if (outcome.failure) {
        throw new QueueUnavailableError(
          `replayed ${outcome.replayed} of ${seqs.length}, then the replay of dead letter ${outcome.failure.seq} to "${outcome.failure.subject}" failed: ${describeError(outcome.failure.error)}`,
        );
      }
      return { matched: seqs.length, replayed: outcome.replayed, skipped: outcome.skipped, dryRun };
    },
  };
}
