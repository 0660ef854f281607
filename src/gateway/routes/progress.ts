import type { FastifyReply, FastifyRequest } from 'fastify';
import { InvocationNotFoundError, ProgressClosedError } from '../../errors.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import { confirmWithin, deadlineAfter } from '../../queue/deadline.js';
import { mergeProgress, parseProgressReport, type InvocationProgress, type ProgressMerge } from '../../status/progress.js';
import { verifyProgressUrl } from '../../status/progress-signing.js';
import type { RecordStore } from '../../status/records.js';
import { isRecordKey } from '../../status/wait.js';
import { sendError } from '../http-errors.js';
import { coalescer } from '../progress-coalescer.js';
import type { ProgressTarget } from '../progress-target.js';

/** Fewest ms between two progress writes of one call id per gateway process (progress-coalescer.ts). */
export const PROGRESS_MIN_INTERVAL_MS = 100;

export interface ProgressReportDeps {
  readonly records: RecordStore;
  /** The key progress URLs are signed with (src/status/progress-key.ts). */
  readonly key: Uint8Array;
  readonly isReady: () => boolean;
  /** Longest wait for the record write, ms (`publish_timeout`); then 503 with Retry-After. */
  readonly publishTimeoutMs: number;
  /** Wall clock, unix ms: expiry checks and the report's `atMs`. */
  readonly now: () => number;
  /** Default {@link PROGRESS_MIN_INTERVAL_MS}. */
  readonly minIntervalMs?: number;
}

type WriteOutcome = ProgressMerge | { readonly kind: 'missing' };

/**
 * `POST /async-function/<call-id>/progress?exp=…&sig=…` with `{"percent": 40, "message": "…"}`:
 * 204 once the progress is in the invocation's record. 403 for a URL asyncfn did not sign for
 * this call id or one past its expiry, 400 for a bad body, 404 when the call id has no record,
 * 409 when the invocation is final (a function can stop on it: nobody is waiting any more).
 */
export function progressReportHandler(deps: ProgressReportDeps): (request: FastifyRequest, reply: FastifyReply, target: ProgressTarget) => Promise<FastifyReply> {
  const write = (callId: string, progress: InvocationProgress): Promise<WriteOutcome> =>
    deps.records.update<WriteOutcome>(callId, (record) => {
      if (!record) return { result: { kind: 'missing' } };
      const merged = mergeProgress(record, progress);
      return merged.kind === 'updated' ? { write: merged.record, result: merged } : { result: merged };
    });
  const writes = coalescer(write, deps.minIntervalMs ?? PROGRESS_MIN_INTERVAL_MS);

  return async (request, reply, target) => {
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
    // The signature first: nobody without a URL learns anything, not even what a body should be.
    verifyProgressUrl(deps.key, target.callId, target, deps.now());
    if (!isRecordKey(target.callId)) return sendError(reply, new InvocationNotFoundError(target.callId));
    const body = (request.body as Buffer | undefined) ?? new Uint8Array(0);
    const progress = parseProgressReport(body, deps.now());
    const deadline = deadlineAfter(deps.publishTimeoutMs, performance.now());
    const outcome = await confirmWithin('the progress write', deadline, () => writes.submit(target.callId, progress));
    if (outcome.kind === 'missing') return sendError(reply, new InvocationNotFoundError(target.callId));
    if (outcome.kind === 'final') return sendError(reply, new ProgressClosedError(target.callId, outcome.state));
    return reply.code(204).header('x-call-id', target.callId).send();
  };
}
