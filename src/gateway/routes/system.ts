import type { FastifyInstance, FastifyReply } from 'fastify';
import type { FunctionResolver } from '../../functions/index.js';
import { BadRequestError, CannotListError } from '../../errors.js';
import { asUnavailable } from '../../queue/deadline.js';
import { QueueUnavailableError } from '../../queue/errors.js';
import type { QueueStats } from '../../status/queue-stats.js';
import { queuesJson } from '../../status/queue-stats-json.js';
import { sendError, sendRefusal } from '../http-errors.js';

export interface SystemRouteDeps {
  readonly resolver: FunctionResolver;
  /** true while the gateway can accept invocations (connected to NATS). */
  readonly isReady: () => boolean;
  /** Reads every queue's counts from JetStream (readQueues); absent: no `GET /system/queues`. */
  readonly readQueues?: () => Promise<readonly QueueStats[]>;
  /** Unix ms: the document's `at` and the oldest messages' ages. */
  readonly now: () => number;
}

/**
 * Health and discovery: `/healthz`, OpenFaaS's `GET /system/functions`, and `GET /system/queues`
 * (the document of `asyncfn queues --json`; admin route, behind `basic_auth` like every `/system/*`).
 */
export async function systemRoutes(app: FastifyInstance, deps: SystemRouteDeps): Promise<void> {
  // The gateway holds no state: healthy and ready both mean "connected to NATS".
  const probe = async (_request: unknown, reply: FastifyReply) =>
    deps.isReady() ? reply.type('text/plain; charset=utf-8').send('OK\n') : sendRefusal(reply, 503, 'not connected to NATS', 'ASYNCFN_ERR_QUEUE_UNAVAILABLE');
  app.get('/healthz', probe);
  app.get('/readyz', probe);

  app.get('/system/functions', async (request, reply) => {
    const { namespace } = request.query as { namespace?: unknown };
    if (namespace !== undefined && (typeof namespace !== 'string' || namespace === '')) throw new BadRequestError('namespace is given once, not empty');
    const functions = await deps.resolver.list(namespace);
    if (!functions) return sendError(reply, new CannotListError());
    // OpenFaaS FunctionStatus fields that a registry of URLs can fill.
    return reply.send(functions.map((fn) => ({ name: fn.name, namespace: fn.namespace, annotations: fn.annotations })));
  });

  const { readQueues } = deps;
  if (readQueues) {
    // One read of JetStream at a time, shared by the requests that arrive meanwhile: a console
    // polling every second from several tabs costs one scan per round, not one per tab.
    let reading: Promise<readonly QueueStats[]> | undefined;
    const sharedRead = (): Promise<readonly QueueStats[]> => {
      reading ??= readQueues().finally(() => {
        reading = undefined;
      });
      return reading;
    };
    app.get('/system/queues', async (_request, reply) => {
      if (!deps.isReady()) throw new QueueUnavailableError('not connected to NATS');
      let rows: readonly QueueStats[];
      try {
        rows = await sharedRead();
      } catch (err) {
        throw asUnavailable(err);
      }
      // Counts of this moment: a cache must not answer a later poll with them.
      return reply.header('cache-control', 'no-store').send(queuesJson(rows, deps.now()));
    });
  }
}
