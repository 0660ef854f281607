import cluster from 'node:cluster';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Config } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { FunctionResolver } from '../functions/index.js';
import { loadGatewayAuth } from './auth/index.js';
import { loadConsoleAssets } from './console/assets.js';
import { buildGateway, checkCallbackWith } from './server.js';
import { bulkOperations } from './bulk.js';
import { inFlightGatherer } from './inflight.js';
import { deadLetterBrowser } from './dead-letters.js';
import { createHttpClient } from '../http/client.js';
import { connectQueue, redactUrl } from '../nats/connection.js';
import { openKeysBucket, provisionGateway, queueSpecFor, RECORDS_BUCKET } from '../queue/topology.js';
import { deferWrite } from '../queue/write-batch.js';
import { readQueues } from '../status/queue-stats.js';
import { loadProgressKey } from '../status/progress-key.js';
import { cancellationRequests } from '../status/cancellations.js';
import { recordStore } from '../status/records.js';
import { queuedGroups } from '../status/queued-groups.js';
import { idempotencyClaims } from '../status/idempotency.js';
import { resultStore } from '../status/results.js';
import { payloadStore } from '../queue/payload-store.js';
import { startupFailure } from '../queue/errors.js';
import { createQueueRouter } from './queue-router.js';
import { createPublisher } from '../queue/publisher.js';
import { createConfirmer } from '../queue/confirmer.js';
import type { Logger } from '../telemetry/logger.js';
import { batchMetrics, createRegistry, functionLabelsFor, gatewayMetrics } from '../telemetry/metrics.js';
import { clusterMetricsReader } from '../telemetry/cluster-metrics.js';
import { batchCompletionPorts } from '../callback/batch-done.js';
import { readBatchCounts } from '../queue/batch-events.js';
import { batchStore } from '../status/batches.js';

/**
 * Room left in a NATS message for the envelope's own headers and the `Asyncfn-H-` prefix of each
 * caller header, beside the caller's headers themselves (at most max_header_size).
 */
export const ENVELOPE_HEADER_ROOM_BYTES = 8 * 1024;

export interface RunningGateway {
  readonly url: string;
  /** Stops accepting requests, finishes the ones in progress, closes the NATS connection. */
  close(): Promise<void>;
}

/** Connects to NATS, provisions what the gateway needs there (topology.ts), and serves the gateway's HTTP routes. */
export async function startGateway(config: Config, deps: { resolver: FunctionResolver; logger: Logger }): Promise<RunningGateway> {
  const logger = deps.logger.child({ component: 'gateway' });
  if (!config.nats.url) throw new ConfigError(['NATS_URL (or faas_nats_address) is required for the gateway']);
  // Secrets are read once, before connecting: a missing one stops startup with the file's name.
  const auth = await loadGatewayAuth(config.security);
  // Read once at startup; a missing build stops startup here, before connecting, naming `npm run build`.
  const consoleSettings = config.gateway.console;
  const consoleAssets = consoleSettings.enabled ? await loadConsoleAssets(consoleSettings.dir) : undefined;
  const registry = createRegistry('gateway');
  const functionLabel = functionLabelsFor(config.runtime.metricsFunctionNames, logger);
  const metrics = gatewayMetrics(registry, functionLabel);
  const queue = await connectQueue({
    ...config.nats,
    url: config.nats.url,
    name: 'asyncfn-gateway',
    logger,
    onReconnect: () => metrics.natsReconnects.inc(),
  });
  try {
    const maxPayload = queue.nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
    const headerRoomBytes = config.security.maxHeaderBytes + ENVELOPE_HEADER_ROOM_BYTES;
    if (config.gateway.maxBodyBytes + headerRoomBytes > maxPayload) {
      throw new ConfigError([
        `max_body_size ${config.gateway.maxBodyBytes} plus ${headerRoomBytes} bytes for headers exceeds the NATS server's max_payload ${maxPayload}: raise max_payload in the server config or lower max_body_size`,
      ]);
    }
    const jsm = await jetstreamManager(queue.nc);
    const buckets = await provisionGateway(queue.nc, jsm, config, logger);
    const records = recordStore(queue.nc, buckets.records);
    const payloads = payloadStore(jsm);
    const results = resultStore(buckets.results, payloads);
    const idempotency = idempotencyClaims(buckets.idempotency);
    const cancellations = cancellationRequests(buckets.cancellations);
    const batches = batchStore(buckets.batches, queue.nc);
    const progress = await loadProgressKey(config.security.secretMountPath, () => openKeysBucket(queue.nc, config.queue));
    const dispatcher = createHttpClient({ connectionsPerOrigin: 256 });
    const confirmer = createConfirmer(queue.nc, { timeoutMs: config.gateway.publishTimeoutMs });
    // One create-only write per event-loop turn for the `queued` records of the default path.
    const groups = queuedGroups({
      create: (key, data) => confirmer.kvPut(RECORDS_BUCKET, key, data, { previousSeq: 0 }),
      fallback: (queued) => {
        for (const record of queued) records.createUnconfirmed(record);
      },
      defer: deferWrite,
    });
    const app = await buildGateway(
      {
        readTimeoutMs: config.gateway.readTimeoutMs,
        writeTimeoutMs: config.gateway.writeTimeoutMs,
        upstreamTimeoutMs: config.gateway.upstreamTimeoutMs,
        maxBodyBytes: config.gateway.maxBodyBytes,
        maxLargeBodyBytes: config.gateway.maxLargeBodyBytes,
        defaultNamespace: config.functions.defaultNamespace,
        maxDelayMs: config.records.maxDelayMs,
        publishTimeoutMs: config.gateway.publishTimeoutMs,
        maxBatchItems: config.gateway.maxBatchItems,
        maxBatchBytes: config.gateway.maxBatchBytes,
        headerLimits: { maxHeaderCount: config.security.maxHeaderCount, maxHeaderBytes: config.security.maxHeaderBytes },
        frontDoor: config.gateway.frontDoor,
      },
      {
        resolver: deps.resolver,
        publisher: createPublisher(queue, confirmer, { publishTimeoutMs: config.gateway.publishTimeoutMs }),
        router: createQueueRouter(config, jsm, logger),
        records,
        queuedGroups: groups,
        results,
        payloads,
        idempotency,
        cancellations,
        dispatcher,
        isReady: () => queue.isConnected(),
        logger,
        registry,
        // One process of several (node:cluster): a scrape reaching it reads them all, through the primary.
        readMetrics: config.gateway.processes > 1 && cluster.isWorker ? clusterMetricsReader(registry) : undefined,
        metrics,
        auth,
        checkCallback: checkCallbackWith(config.security.callbackAllow),
        inFlight: inFlightGatherer(queue.nc),
        deadLetters: deadLetterBrowser({ js: jetstream(queue.nc), jsm }),
        bulk: bulkOperations({ js: jetstream(queue.nc), jsm, cancellations, publishTimeoutMs: config.gateway.publishTimeoutMs, now: Date.now }),
        batch: {
          jsm,
          batches,
          completion: batchCompletionPorts(jsm.jetstream(), batches, (batchId) => readBatchCounts(jsm, batchId)),
          metrics: batchMetrics(registry, functionLabel),
        },
        progressKey: progress.key,
        console: consoleAssets ? { assets: consoleAssets, traceUrlTemplate: consoleSettings.traceUrlTemplate } : undefined,
        // The same reader as `asyncfn queues`, with the same queue names (queueSpecFor).
        readQueues: () => readQueues({ jsm, records: buckets.records, defaultQueue: queueSpecFor(config), durableFor: (queue) => queueSpecFor(config, queue).durable }),
      },
    );
    const url = await app.listen({ port: config.gateway.port, host: config.gateway.host });
    logger.info({ url, nats: redactUrl(config.nats.url) }, 'gateway listening');
    if (consoleAssets) logger.info({ url: `${url}/ui` }, 'web console at /ui');
    return {
      url,
      close: async () => {
        await app.close();
        await dispatcher.close();
        confirmer.close();
        await queue.close();
      },
    };
  } catch (err) {
    await queue.close();
    throw startupFailure('gateway', err);
  }
}
