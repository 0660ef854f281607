import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseFilter, type DeadLetterFilter } from '../../dead-letters/filters.js';
import { BadRequestError } from '../../errors.js';
import { asUnavailable } from '../../queue/deadline.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import {
  apiLabel,
  CANCELLABLE_STATES,
  filterOptionsFrom,
  hasInvocationCriteria,
  INVOCATION_FILTER_FIELDS,
  parseInvocationFilter,
  type RequestFilterFields,
} from '../../status/filters.js';
import { hasCriteria as hasDeadLetterCriteria } from '../../dead-letters/filters.js';
import type { BulkOperations } from '../bulk.js';

export interface BulkRouteDeps {
  readonly bulk: BulkOperations;
  /** false while disconnected from NATS. */
  readonly isReady: () => boolean;
  /** Unix ms: anchors relative times (`"since": "2h"`). */
  readonly now: () => number;
}

/** Filter fields of `POST /system/dead-letters/replay` (`seqs`: dead-letter sequence numbers). */
const DEAD_LETTER_FIELDS = ['function', 'queue', 'reason', 'since', 'until', 'seqs'] as const;

/**
 * Bulk operations by filter (admin routes: behind `basic_auth`, as every `/system/*` route):
 * - `POST /system/invocations/cancel`: cancels every unfinished invocation matching the filter
 *   → `{matched, cancelled, dryRun, byState, byFunction}`;
 * - `POST /system/dead-letters/replay`: replays every dead letter matching the filter
 *   → `{matched, replayed, skipped, dryRun}`.
 * The filter comes as a JSON object body, or in the query string, or both (a field once);
 * `dryRun=true` only counts; a request without any criterion needs `all=true`.
 */
export async function bulkRoutes(app: FastifyInstance, deps: BulkRouteDeps): Promise<void> {
  const requireQueue = (): void => {
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
  };

  app.post('/system/invocations/cancel', async (request, reply) => {
    requireQueue();
    const { fields, dryRun, all } = requestFields(request, INVOCATION_FILTER_FIELDS);
    const parsed = parseInvocationFilter(fields, deps.now(), { label: apiLabel, allowedStates: CANCELLABLE_STATES });
    if (!parsed.ok) throw new BadRequestError(parsed.error);
    if (!hasInvocationCriteria(parsed.value) && !all) throw new BadRequestError(noCriteria(INVOCATION_FILTER_FIELDS));
    // Without a state, every state a cancellation still changes; never a final one.
    const filter = parsed.value.states === undefined ? { ...parsed.value, states: CANCELLABLE_STATES } : parsed.value;
    return reply.send(await unavailableOnFailure(() => deps.bulk.cancelInvocations(filter, { dryRun })));
  });

  app.post('/system/dead-letters/replay', async (request, reply) => {
    requireQueue();
    const { fields, dryRun, all } = requestFields(request, DEAD_LETTER_FIELDS);
    const filter = deadLetterFilterOf(fields, deps.now());
    if (!hasDeadLetterCriteria(filter) && filter.seqs.length === 0 && !all) throw new BadRequestError(noCriteria(DEAD_LETTER_FIELDS));
    return reply.send(await unavailableOnFailure(() => deps.bulk.replayDeadLetters(filter, { dryRun })));
  });
}

/**
 * A dead-letter filter from request fields (`seqs`: comma-separated); a bad one is a 400 with the
 * words of `asyncfn dlq`, the options named as the request names them (`"since"`, not `--since`).
 */
export function deadLetterFilterOf(fields: Readonly<Record<string, string>>, nowMs: number): DeadLetterFilter {
  const { seqs, ...options } = fields;
  const parsed = parseFilter(options, seqs === undefined ? [] : seqs.split(',').map((s) => s.trim()), nowMs);
  if (!parsed.ok) throw new BadRequestError(parsed.error.replace(/--(\w+)/g, '"$1"'));
  return parsed.value;
}

function requestFields(request: FastifyRequest, allowed: readonly string[]): RequestFilterFields {
  const parsed = filterOptionsFrom(request.body, (request.query ?? {}) as Record<string, unknown>, allowed);
  if (!parsed.ok) throw new BadRequestError(parsed.error);
  return parsed.value;
}

export function noCriteria(fields: readonly string[]): string {
  return `no filter: give at least one of ${fields.join(', ')}, or "all": true`;
}

/** A coded error stays as it is (a 503 saying how far it got); any other failure of JetStream is a 503. */
export async function unavailableOnFailure<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw asUnavailable(err);
  }
}
