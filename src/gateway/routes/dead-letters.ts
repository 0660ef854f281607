import type { FastifyInstance } from 'fastify';
import { hasCriteria, parseSeq } from '../../dead-letters/filters.js';
import { DEAD_LETTER_PAGE_DEFAULT, DEAD_LETTER_PAGE_MAX } from '../../dead-letters/view.js';
import { BadRequestError, DeadLetterNotFoundError } from '../../errors.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import { filterOptionsFrom, type RequestFilterFields } from '../../status/filters.js';
import type { DeadLetterBrowser } from '../dead-letters.js';
import { deadLetterFilterOf, noCriteria, unavailableOnFailure } from './bulk.js';

export interface DeadLetterRouteDeps {
  readonly deadLetters: DeadLetterBrowser;
  /** false while disconnected from NATS. */
  readonly isReady: () => boolean;
  /** Unix ms: anchors relative times (`since=2h`). */
  readonly now: () => number;
}

/** The filter fields of the list and the purge, named as `asyncfn dlq list` names its options. */
const FILTER_FIELDS = ['function', 'queue', 'reason', 'since', 'until'] as const;

/**
 * The console's dead letters (admin routes: behind `basic_auth`, as every `/system/*` route), read
 * and purged as `asyncfn dlq list | show | purge` do:
 * - `GET /system/dead-letters?<filter>&after=<seq>&limit=N` → `{items, next}`, oldest first;
 * - `GET /system/dead-letters/<seq>` → one dead letter with its request (secrets redacted) and a
 *   body preview; 404 when there is none;
 * - `DELETE /system/dead-letters?<filter>` → `{matched, purged, dryRun}`; without any criterion
 *   it needs `all=true`, as `POST /system/dead-letters/replay`.
 */
export async function deadLetterRoutes(app: FastifyInstance, deps: DeadLetterRouteDeps): Promise<void> {
  const requireQueue = (): void => {
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
  };

  app.get('/system/dead-letters', async (request, reply) => {
    const { after, limit, ...query } = (request.query ?? {}) as Record<string, unknown>;
    const { fields, dryRun, all } = queryFields(query);
    if (dryRun || all) throw new BadRequestError('"dryRun" and "all" apply to DELETE /system/dead-letters only');
    const filter = deadLetterFilterOf(fields, deps.now());
    const page = { afterSeq: after === undefined ? undefined : cursorOf(after), limit: limit === undefined ? DEAD_LETTER_PAGE_DEFAULT : limitOf(limit) };
    requireQueue();
    return reply.send(await unavailableOnFailure(() => deps.deadLetters.list(filter, page)));
  });

  app.get<{ Params: { seq: string } }>('/system/dead-letters/:seq', async (request, reply) => {
    const seq = parseSeq(request.params.seq);
    if (seq === undefined) throw new BadRequestError(`"${request.params.seq}" is not a dead-letter sequence number`);
    requireQueue();
    const detail = await unavailableOnFailure(() => deps.deadLetters.get(seq));
    if (!detail) throw new DeadLetterNotFoundError(seq);
    return reply.send(detail);
  });

  app.delete('/system/dead-letters', async (request, reply) => {
    const { fields, dryRun, all } = queryFields((request.query ?? {}) as Record<string, unknown>);
    const filter = deadLetterFilterOf(fields, deps.now());
    if (!hasCriteria(filter) && !all) throw new BadRequestError(noCriteria(FILTER_FIELDS));
    requireQueue();
    return reply.send(await unavailableOnFailure(() => deps.deadLetters.purge(filter, { dryRun })));
  });
}

function queryFields(query: Record<string, unknown>): RequestFilterFields {
  const parsed = filterOptionsFrom(undefined, query, FILTER_FIELDS);
  if (!parsed.ok) throw new BadRequestError(parsed.error);
  return parsed.value;
}

function cursorOf(raw: unknown): number {
  const seq = typeof raw === 'string' ? (raw === '0' ? 0 : parseSeq(raw)) : undefined;
  if (seq === undefined) throw new BadRequestError('"after" must be a dead-letter sequence number (the "next" of the previous page)');
  return seq;
}

function limitOf(raw: unknown): number {
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= DEAD_LETTER_PAGE_MAX)) throw new BadRequestError(`"limit" must be a whole number from 1 to ${DEAD_LETTER_PAGE_MAX}`);
  return n;
}
