import type { FastifyInstance } from 'fastify';
import { BadRequestError } from '../../errors.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import { INFLIGHT_MAX_LIMIT, type InFlightRequest } from '../../status/inflight.js';
import type { InFlightGatherer } from '../inflight.js';

export interface InFlightRouteDeps {
  readonly gather: InFlightGatherer;
  /** false while disconnected from NATS (a request then would wait in the client's buffer and find nobody). */
  readonly isReady: () => boolean;
}

/** The query of `GET /system/inflight` as a request; a 400 names what is wrong. */
export function inFlightRequestOf(query: Record<string, unknown>): InFlightRequest {
  const unknown = Object.keys(query).filter((k) => k !== 'function' && k !== 'limit');
  if (unknown.length > 0) throw new BadRequestError(`unknown parameter ${unknown.join(', ')}: give function and/or limit`);
  const { function: fn, limit } = query;
  if (fn !== undefined && (typeof fn !== 'string' || fn === '')) throw new BadRequestError('function must be one function name (name or name.namespace)');
  if (limit === undefined) return { function: fn };
  const n = typeof limit === 'string' && /^\d+$/.test(limit) ? Number(limit) : NaN;
  if (!(n >= 1 && n <= INFLIGHT_MAX_LIMIT)) throw new BadRequestError(`limit must be a whole number from 1 to ${INFLIGHT_MAX_LIMIT}`);
  return { function: fn, limit: n };
}

/**
 * `GET /system/inflight[?function=name&limit=N]` (admin: behind `basic_auth`, as every `/system/*`
 * route): the invocations running now on every worker, each with its machine state
 * (src/gateway/inflight.ts) → `{at, workers: [{worker, queues, total, byState, invocations, truncated}], total}`.
 */
export async function inFlightRoutes(app: FastifyInstance, deps: InFlightRouteDeps): Promise<void> {
  app.get('/system/inflight', async (request, reply) => {
    const query = inFlightRequestOf((request.query ?? {}) as Record<string, unknown>);
    if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
    return reply.send(await deps.gather(query));
  });
}
