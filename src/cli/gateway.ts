import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Config } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { FunctionResolver } from '../functions/index.js';
import { buildGateway } from '../gateway/server.js';
import { createHttpClient } from '../http/client.js';
import { connectQueue } from '../queue/connection.js';
import { ensureStream } from '../queue/provision.js';
import { queueSpecFor } from '../queue/queues.js';
import { openCancellationRequests } from '../status/cancellations.js';
import { bucketOptions, openRecords } from '../status/records.js';
import { createQueueRouter } from '../gateway/queue-router.js';
import { createPublisher } from '../queue/publisher.js';
import type { Logger } from '../telemetry/logger.js';
import { createRegistry, gatewayMetrics } from '../telemetry/metrics.js';

/** Room left in a NATS message for the envelope's and the caller's headers (node caps headers at 16 KiB). */
export const HEADER_ROOM_BYTES = 24 * 1024;

export interface RunningGateway {
  readonly url: string;
  /** Stops accepting requests, finishes the ones in progress, closes the NATS connection. */
  close(): Promise<void>;
}

/** Connects to NATS, makes sure the stream exists, and serves the gateway's HTTP routes. */
export async function startGateway(
  config: Config,
  deps: { resolver: FunctionResolver; logger: Logger },
): Promise<RunningGateway> {
  const logger = deps.logger.child({ component: 'gateway' });
  if (!config.nats.url) throw new ConfigError(['NATS_URL (or faas_nats_address) is required for the gateway']);
  const registry = createRegistry('gateway');
  const metrics = gatewayMetrics(registry);
  const queue = await connectQueue({
    url: config.nats.url,
    name: 'asyncfn-gateway',
    logger,
    onReconnect: () => metrics.natsReconnects.inc(),
  });
  try {
    const maxPayload = queue.nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
    if (config.gateway.maxBodyBytes + HEADER_ROOM_BYTES > maxPayload) {
      throw new ConfigError([
        `max_body_size ${config.gateway.maxBodyBytes} plus ${HEADER_ROOM_BYTES} bytes for headers exceeds the NATS server's max_payload ${maxPayload}: raise max_payload in the server config or lower max_body_size`,
      ]);
    }
    const jsm = await jetstreamManager(queue.nc);
    await ensureStream(jsm, queueSpecFor(config), logger);
    const bucket = bucketOptions(config);
    const records = await openRecords(queue.nc, bucket);
    const cancellations = await openCancellationRequests(queue.nc, bucket);
    const dispatcher = createHttpClient({ connectionsPerOrigin: 256 });
    const app = await buildGateway(
      {
        readTimeoutMs: config.gateway.readTimeoutMs,
        writeTimeoutMs: config.gateway.writeTimeoutMs,
        upstreamTimeoutMs: config.gateway.upstreamTimeoutMs,
        maxBodyBytes: config.gateway.maxBodyBytes,
        defaultNamespace: config.functions.defaultNamespace,
      },
      {
        resolver: deps.resolver,
        publisher: createPublisher(queue, jetstream(queue.nc), { publishTimeoutMs: config.gateway.publishTimeoutMs }),
        router: createQueueRouter(config, jsm, logger),
        records,
        cancellations,
        dispatcher,
        isReady: () => queue.isConnected(),
        logger,
        registry,
        metrics,
      },
    );
    const url = await app.listen({ port: config.gateway.port, host: config.gateway.host });
    logger.info({ url, nats: config.nats.url }, 'gateway listening');
    return {
      url,
      close: async () => {
        await app.close();
        await dispatcher.close();
        await queue.close();
      },
    };
  } catch (err) {
    await queue.close();
    throw err;
  }
}
