import type { FastifyInstance } from 'fastify';
import { BadRequestError } from '../../errors.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import { INFLIGHT_MAX_LIMIT, type InFlightRequest } from '../../status/inflight.js';
import { withProgress, type InFlightGatherer, type ProgressReader } from '../inflight.js';

export interface InFlightRouteDeps {
  readonly gather: InFlightGatherer;
  /** Reads an invocation's reported progress (its record) for `progress=true`. */
  readonly readProgress: ProgressReader;
  /** false while disconnected from NATS (a request then would wait in the client's buffer and find nobody). */
  readonly isReady: () => boolean;
}

/** The query of `GET /system/inflight` as a request; a 400 names what is wrong. */
export function inFlightRequestOf(query: Record<string, unknown>): InFlightRequest {
  const unknown = Object.keys(query).filter((k) => k !== 'function' && k !== 'limit' && k !== 'progress');
  if (unknown.length > 0) throw new BadRequestError(`unknown parameter ${unknown.join(', ')}: give function, limit and/or progress`);
  const { function: fn, limit } = query;
  if (fn !== undefined && (typeof fn !== 'string' || fn === '')) throw new BadRequestError('function must be one function name (name or name.namespace)');
  if (limit === undefined) return { function: fn };
  const n = typeof limit === 'string' && /^\d+$/.test(limit) ? Number(limit) : NaN;
  if (!(n >= 1 && n <= INFLIGHT_MAX_LIMIT)) throw new BadRequestError(`limit must be a whole number from 1 to ${INFLIGHT_MAX_LIMIT}`);
  return { function: fn, limit: n };
}

/** Whether the query asks for each invocation's reported progress (`progress=true`); a 400 for any other value. */
export function wantsProgress(query: Record<string, unknown>): boolean {
  const { progress } = query;
  if (progress === undefined || progress === 'false') return false;
  if (progress === 'true') return true;
  throw new BadRequestError('progress must be true or false');
}

/**
 * `GET /system/inflight[?function=name&limit=N&progress=true]` (admin: behind `basic_auth`, as every `/system/*`
 * route): the invocations running now on every worker, each with its machine state
 * (src/gateway/inflight.ts) → `{at, workers: [{worker, queues, total, byState, invocations, truncated}], total}`.
 * With `progress=true`, each listed invocation also carries the progress its function last
 * reported (one record read each, the first INFLIGHT_PROGRESS_READS).
 */
export async function inFlightRoutes(app: FastifyInstance, deps: InFlightRouteDeps): Promise<void> {
  app.get('/system/inflight', async (request, reply) => {
    const params = (request.query ?? {}) as Record<string, unknown>;
    const query = inFlightRequestOf(params);
    const progress = wantsProgress(params);
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
    const view = await deps.gather(query);
    return reply.send(progress ? await withProgress(view, deps.readProgress) : view);
  });
}
