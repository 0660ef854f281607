import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import type { CallbackRetryPolicy } from '../../actors/callback.policy.js';
import type { InvocationSettings } from '../../actors/invocation.types.js';
import type { RetryPolicy } from '../../actors/retry.policy.js';
import { CallbackFailedError, deliverCallback, type CallbackSigning } from '../callback/deliver.js';
import { startCallbackRetrier } from '../callback/durable.js';
import { CallbackRefusedError, createTargetGuard } from '../callback/target-guard.js';
import { parseSigningSecrets, SIGNING_SECRET_FILE } from '../callback/signing.js';
import type { Config } from '../config/index.js';
import { readMountedSecretLines } from '../config/secrets.js';
import { ConfigError } from '../errors.js';
import type { FunctionResolver } from '../functions/index.js';
import { createHttpClient } from '../http/client.js';
import { createConfirmer } from '../queue/confirmer.js';
import { connectQueue } from '../nats/connection.js';
import { encodeDeadLetter, publishDeadLetter, type DeadLetterMeta, type RawMessage } from '../queue/dead-letter.js';
import { startDelayedScheduler } from '../queue/delayed.js';
import { deferWrite } from '../queue/write-batch.js';
import { CALLBACK_DURABLE, CALLBACK_STREAM, KEYS_BUCKET, openKeysBucket, openRateLimitsBucket, provisionWorker, THROTTLES_BUCKET } from '../queue/topology.js';
import { sharedRateLimiter } from '../flow/index.js';
import { watchCancellations } from '../status/cancellations.js';
import { recordStore } from '../status/records.js';
import { loadProgressKey, PROGRESS_KEY_FILE } from '../status/progress-key.js';
import { progressUrlSigner, type ProgressUrlSigner } from '../status/progress-signing.js';
import { resultStore } from '../status/results.js';
import { payloadStore } from '../queue/payload-store.js';
import type { Invocation } from '../queue/envelope.js';
import { attemptLedger } from '../status/attempt-ledger.js';
import { startHealthServer } from '../telemetry/health-server.js';
import type { Logger } from '../telemetry/logger.js';
import { batchMetrics, createRegistry, flowControlMetrics, functionLabelsFor, workerMetrics, type InFlightSample } from '../telemetry/metrics.js';
import { batchCompletionPorts } from '../callback/batch-done.js';
import { readBatchCounts } from '../queue/batch-events.js';
import { startupFailure } from '../queue/errors.js';
import { batchStore } from '../status/batches.js';
import { batchItemCounter } from './batches.js';
import { pollPending } from './pending.js';
import { startQueue, type ServedQueue } from './queue.js';
import { serveInFlight, workerIdentity } from './inflight.js';
import { askHolder, serveHolds } from './holders.js';
import { VERSION } from '../version.js';

export interface RunningWorker {
  /** Base URL of the worker's /healthz, /readyz and /metrics server. */
  readonly url: string;
  /** Stops pulling, waits up to `graceMs` for in-flight invocations, releases the rest, disconnects. */
  close(graceMs?: number): Promise<void>;
}

/**
 * The callback signing keys, read once before anything connects, so a missing, empty or malformed
 * callback-signing-secret stops startup (the message names the file and the line, never a secret).
 * Both the first delivery and the durable retrier sign through the one `deliverCallback`.
 */
async function callbackSigningOf(config: Config): Promise<CallbackSigning | undefined> {
  if (!config.security.signCallbacks) return undefined;
  const { secretMountPath } = config.security;
  const lines = await readMountedSecretLines(secretMountPath, SIGNING_SECRET_FILE, 'callback_signing');
  return { secrets: parseSigningSecrets(lines, `callback_signing: ${join(secretMountPath, SIGNING_SECRET_FILE)}`) };
}

/**
 * The signer of progress URLs under `gateway_public_url` (or the URL `publicUrl` gives when
 * called), with the key the gateways verify with (progress-key.ts); undefined when neither is
 * set: functions get no progress URL.
 */
async function progressSignerOf(
  config: Config,
  publicUrl: (() => string | undefined) | undefined,
  nc: NatsConnection,
  logger: Logger,
): Promise<ProgressUrlSigner | undefined> {
  const configured = config.worker.gatewayPublicUrl;
  if (configured === undefined && publicUrl === undefined) return undefined;
  const { key, source } = await loadProgressKey(config.security.secretMountPath, () => openKeysBucket(nc, config.queue));
  logger.info({ gatewayPublicUrl: configured, keyFrom: source === 'secret' ? PROGRESS_KEY_FILE : KEYS_BUCKET }, 'functions get a progress URL (X-Asyncfn-Progress-Url)');
  return progressUrlSigner(publicUrl ?? (() => configured), key);
}

/** Callbacks the durable retrier delivers at once per worker. */
const CALLBACK_CONCURRENCY = 16;

export function retryPolicyOf(config: Config): RetryPolicy {
  return {
    maxAttempts: config.retry.maxAttempts,
    retryStatuses: new Set(config.retry.retryStatuses),
    initialWaitMs: config.retry.initialWaitMs,
    maxWaitMs: config.retry.maxWaitMs,
    mode: config.retry.mode,
  };
}

export function callbackPolicyOf(config: Config): CallbackRetryPolicy {
  const { maxAttempts, initialWaitMs, maxWaitMs, permanentStatuses, maxAgeMs } = config.callback;
  return { maxAttempts, initialWaitMs, maxWaitMs, permanentStatuses: new Set(permanentStatuses), maxAgeMs };
}

export interface StartWorkerDeps {
  readonly resolver: FunctionResolver;
  readonly logger: Logger;
  /**
   * The gateway's public URL when it is known only after the worker started (`asyncfn up` with
   * gateway_port 0), read at each function call; takes the place of `gateway_public_url`.
   */
  readonly gatewayPublicUrl?: () => string | undefined;
}

/**
 * Connects to NATS, provisions every stream, consumer and bucket the worker needs (topology.ts),
 * and runs one supervisor per served queue plus the durable callback retrier.
 */
export async function startWorker(config: Config, deps: StartWorkerDeps): Promise<RunningWorker> {
  const logger = deps.logger.child({ component: 'worker' });
  if (!config.nats.url) throw new ConfigError(['NATS_URL (or faas_nats_address) is required for the worker']);
  const signing = await callbackSigningOf(config);
  if (signing) logger.info({ signingSecrets: signing.secrets.length }, 'callbacks are signed (Standard Webhooks)');
  const registry = createRegistry('worker');
  /** The queues this worker serves, once started; the inflight gauge reads their registries. */
  const supervisors: ServedQueue[] = [];
  const inFlight = function* (): Iterable<InFlightSample> {
    for (const served of supervisors) yield* served.inFlight();
  };
  const functionLabel = functionLabelsFor(config.runtime.metricsFunctionNames, logger);
  const metrics = { ...workerMetrics(registry, inFlight, functionLabel), ...flowControlMetrics(registry) };
  const batchCounters = batchMetrics(registry, functionLabel);
  const queue = await connectQueue({
    ...config.nats,
    url: config.nats.url,
    name: 'asyncfn-worker',
    logger,
    onReconnect: () => metrics.natsReconnects.inc(),
  });
  try {
    const confirmer = createConfirmer(queue.nc, { batchWrites: true });
    const jsm = await jetstreamManager(queue.nc);
    const js = jsm.jetstream();
    const topology = await provisionWorker(queue.nc, jsm, config, logger);
    // Shared by every worker replica; used only by functions with a rate-limit annotation.
    const rateLimiter = sharedRateLimiter(await openRateLimitsBucket(queue.nc, config.queue));
    const records = recordStore(queue.nc, topology.records);
    const payloads = payloadStore(jsm);
    const results = resultStore(topology.results, payloads);
    // The attempt ledger is written through the confirmer, as final records are (batched, confirmed).
    const ledger = attemptLedger(topology.throttles, (key, data) => confirmer.kvPut(THROTTLES_BUCKET, key, data));
    const cancellations = await watchCancellations(topology.cancellations);
    const progressUrl = await progressSignerOf(config, deps.gatewayPublicUrl, queue.nc, logger);

    const served = topology.queues;
    const connections = served.reduce((sum, q) => sum + q.served.maxInflight, CALLBACK_CONCURRENCY);
    // The calls started in one I/O phase are written together at its end, with its NATS writes.
    const dispatcher = createHttpClient({ connectionsPerOrigin: connections, deferWrite });
    // Callbacks go where callers say: a pool of their own whose every connection passes the SSRF
    // guard (callback_allow). Function calls are not guarded: functions are the operator's own,
    // typically cluster-internal, addresses.
    const callbackDispatcher = createHttpClient({
      connectionsPerOrigin: connections,
      connectGuard: createTargetGuard(config.security.callbackAllow),
      deferWrite,
    });
    const deliver = deliverCallback({ dispatcher: callbackDispatcher, timeoutMs: config.callback.timeoutMs, version: VERSION, signing });
    // The direct attempt holds an invocation slot: it gets a short budget, and a receiver slower
    // than that gets the result from the durable retrier, whose attempts have the full timeout.
    const deliverFirst = deliverCallback({
      dispatcher: callbackDispatcher,
      timeoutMs: Math.min(config.callback.firstAttemptTimeoutMs, config.callback.timeoutMs),
      version: VERSION,
      signing,
    });
    const deadLetter = (original: RawMessage, meta: DeadLetterMeta) => publishDeadLetter(js, encodeDeadLetter(original, meta)).then(() => undefined);
    const policy = retryPolicyOf(config);
    const settings = (invocation: Invocation): InvocationSettings => ({
      policy,
      cancelRequested: cancellations.cancels(invocation.callId, invocation.enqueuedAtMs),
      nowMs: Date.now(),
      random: Math.random,
      deadLetterNonRetryable: config.deadLetters.nonRetryable,
      adaptiveConcurrency: config.worker.adaptiveConcurrency,
      throttleMaxDeliveries: config.worker.throttleMaxDeliveries,
    });

    const countBatchItem = batchItemCounter({
      js,
      completion: batchCompletionPorts(js, batchStore(topology.batches, queue.nc), (batchId) => readBatchCounts(jsm, batchId)),
      metrics: batchCounters,
      logger,
    });

    const worker = workerIdentity();
    // Before any queue pulls: from its first delivery on, another worker may ask about it.
    const holdsResponder = serveHolds({ nc: queue.nc, worker, holds: (callId, enqueuedAtMs) => supervisors.some((s) => s.holds(callId, enqueuedAtMs)), logger });
    const ask = (holder: string, invocation: Invocation, timeoutMs: number) => askHolder({ nc: queue.nc, timeoutMs, logger }, holder, invocation);
    for (const q of served) {
      supervisors.push(
        await startQueue(config, q, {
          queue,
          js,
          jsm,
          resolver: deps.resolver,
          dispatcher,
          deliver: deliverFirst,
          rateLimiter,
          deadLetter,
          settings,
          ended: (invocation) => {
            cancellations.outlived(invocation.callId, invocation.enqueuedAtMs)?.catch((err: unknown) => {
              // Harmless if it stays: it cancels nothing enqueued after it, and the bucket's age limit removes it.
              logger.warn({ err, callId: invocation.callId }, 'could not delete the cancellation marker of an invocation that ended otherwise');
            });
          },
          retryPolicy: policy,
          records,
          confirmer,
          results,
          payloads,
          ledger,
          logger,
          metrics,
          countBatchItem,
          progressUrl,
          worker,
          askHolder: ask,
        }),
      );
    }
    const schedulers = await Promise.all(
      // Not a child bound to the queue: the scheduler names the queue on each line itself (a key bound and logged is written twice).
      served.map((q) => startDelayedScheduler({ queue, js, jsm, spec: q.spec, logger, deadLetter })),
    );
    const pendingPoller = pollPending(config, jsm, metrics, logger);
    const inFlightResponder = serveInFlight({ nc: queue.nc, worker, sources: supervisors, logger });
    const stopCancelling = cancellations.onRequested((callId) => {
      if (supervisors.some((s) => s.cancel(callId))) logger.info({ callId }, 'cancelling a running invocation');
    });

    // A child of the worker's logger would write `component` twice.
    const callbackLogger = deps.logger.child({ component: 'callbacks' });
    const retrier = startCallbackRetrier(
      {
        consumer: await js.consumers.get(CALLBACK_STREAM, CALLBACK_DURABLE),
        policy: callbackPolicyOf(config),
        concurrency: CALLBACK_CONCURRENCY,
        deliver: (req) => deliver(req),
        statusOf: (err) => (err instanceof CallbackFailedError ? err.status : undefined),
        isPermanent: (err) => err instanceof CallbackRefusedError,
        deadLetter: (msg, q, attempts, error, reason) => deadLetter({ headers: msg.headers, data: msg.data }, { reason, queue: q, attempts, error, atMs: Date.now() }),
        onEvent: (event) => {
          metrics.callbacks.inc({ queue_name: event.queue, result: event.result });
          if (event.result === 'deadLettered') metrics.deadLetters.inc({ queue_name: event.queue, reason: event.reason ?? 'callbackFailed' });
          if (event.result === 'delivered') callbackLogger.info(event, 'callback delivered');
          else callbackLogger.warn(event, `callback ${event.result}`);
        },
        onPullFailed: (err) => callbackLogger.warn({ err }, 'could not pull pending callbacks; retrying'),
        payloads,
      },
      queue,
    );

    const health = await startHealthServer({
      host: config.worker.host,
      port: config.worker.port,
      registry,
      checks: { healthy: () => queue.isConnected(), ready: () => queue.isConnected() && supervisors.length === served.length },
    });
    logger.info({ url: health.url }, 'worker health and metrics server listening');

    return {
      url: health.url,
      close: async (graceMs = config.worker.shutdownGraceMs) => {
        clearInterval(pendingPoller);
        const results = await Promise.all(supervisors.map((s) => s.drain(graceMs)));
        const released = results.reduce((n, r) => n + r.released, 0);
        const unsettled = results.reduce((n, r) => n + r.unsettled, 0);
        if (released > 0) logger.warn({ released }, 'released unfinished invocations back to the queue');
        if (unsettled > 0) logger.warn({ unsettled }, 'stopped during callbacks; JetStream redelivers those after ack_wait');
        stopCancelling();
        inFlightResponder.unsubscribe();
        holdsResponder.unsubscribe();
        await Promise.all(schedulers.map((s) => s.close()));
        await retrier.stop();
        cancellations.stop();
        // Closing NATS first flushes the naks; then whatever HTTP is still open is cut.
        confirmer.close();
        await queue.close();
        await dispatcher.destroy();
        await callbackDispatcher.destroy();
        await health.close();
      },
    };
  } catch (err) {
    await queue.close();
    throw startupFailure('worker', err);
  }
}
