import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { millis } from '@nats-io/nats-core';
import { ackExtendIntervalMs } from '../../actors/ack-extender.js';
import type { InvocationEffects } from '../../actors/invocation.effects.js';
import { withEffects } from '../../actors/invocation.machine.js';
import type { InvocationSettings, ResultStorage } from '../../actors/invocation.types.js';
import type { RetryPolicy } from '../../actors/retry.policy.js';
import { QueueSupervisor } from '../../actors/queue.supervisor.js';
import type { deliverCallback } from '../callback/deliver.js';
import { handOffCallback } from '../callback/durable.js';
import type { Config, QueueServed } from '../config/index.js';
import type { FunctionResolver } from '../functions/index.js';
import { functionPolicies } from '../functions/annotations.js';
import { invokeFunction } from '../functions/invoke.js';
import type { Dispatcher } from 'undici';
import type { QueueConnection } from '../nats/connection.js';
import type { DeadLetterMeta, RawMessage } from '../queue/dead-letter.js';
import type { Confirmer } from '../queue/confirmer.js';
import { encodeEnvelope, type Invocation } from '../queue/envelope.js';
import { storedQueueRequest } from '../queue/openfaas-request.js';
import { pullSource } from '../queue/pull.js';
import { RECORDS_BUCKET, type ProvisionedQueue } from '../queue/topology.js';
import type { RecordStore } from '../status/records.js';
import type { ResultStore } from '../status/results.js';
import type { ThrottleLedger } from '../status/throttles.js';
import type { Logger } from '../telemetry/logger.js';
import type { WorkerMetrics } from '../telemetry/metrics.js';
import { supervisorEvents } from './events.js';
import { recordWriter } from './records.js';

/** What every queue of a worker shares. */
export interface QueueDeps {
  readonly queue: QueueConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly resolver: FunctionResolver;
  readonly dispatcher: Dispatcher;
  /** The direct callback attempt, bounded by callback_first_attempt_timeout. */
  readonly deliver: ReturnType<typeof deliverCallback>;
  readonly deadLetter: (original: RawMessage, meta: DeadLetterMeta) => Promise<void>;
  readonly settings: (callId: string) => InvocationSettings;
  /** The worker's retry policy, which a function's annotations may override. */
  readonly retryPolicy: RetryPolicy;
  readonly records: RecordStore;
  /** The worker connection's confirmer: double acks and final records over one shared inbox. */
  readonly confirmer: Confirmer;
  readonly results: ResultStore;
  /** Throttled deliveries per invocation (adaptive concurrency). */
  readonly throttles: ThrottleLedger;
  readonly logger: Logger;
  readonly metrics: WorkerMetrics;
}

const encoder = new TextEncoder();

/** Keeps a result unless it is larger than `result_max_size`; the record tells which. */
async function storeResult(results: ResultStore, callId: string, body: Uint8Array, maxBytes: number): Promise<ResultStorage> {
  if (body.length > maxBytes) return { stored: false, reason: `larger than result_max_size (${body.length} > ${maxBytes} bytes)` };
  await results.put(callId, body);
  return { stored: true };
}

/**
 * The message a dead letter keeps: the one that was published. asyncfn's own is encoded again
 * (the same envelope); an OpenFaaS QueueRequest is kept as it came, plus the call id it ran under.
 */
function storedOriginal(invocation: Invocation): RawMessage {
  return invocation.original ? storedQueueRequest(invocation, invocation.original) : encodeEnvelope(invocation);
}

/** The invocation machine's effects for one queue, built once and shared by all its invocations. */
export function queueEffects(config: Config, served: QueueServed, d: QueueDeps, logger: Logger): InvocationEffects {
  const invoke = invokeFunction({
    resolver: d.resolver,
    policyFor: functionPolicies(d.retryPolicy),
    dispatcher: d.dispatcher,
    upstreamTimeoutMs: served.upstreamTimeoutMs,
    queue: served.name,
  });
  return {
    invokeFunction: invoke,
    deliverCallback: (request) => d.deliver(request),
    handOffCallback: (request) => handOffCallback(d.js, served.name, request),
    storeResult: (request) => storeResult(d.results, request.invocation.callId, request.outcome.body, config.records.resultMaxBytes),
    deadLetter: (request) =>
      d.deadLetter(storedOriginal(request.invocation), {
        reason: request.reason,
        queue: served.name,
        attempts: request.attempts,
        status: request.outcome?.status,
        error: request.outcome?.transportError,
        atMs: Date.now(),
      }),
    record: recordWriter({
      records: d.records,
      queue: served.name,
      logger,
      putConfirmed: (record) => d.confirmer.kvPut(RECORDS_BUCKET, record.callId, encoder.encode(JSON.stringify(record))).then(() => undefined),
    }),
    ackAck: (message) => message.ackAck(),
    scheduleRetry: (message, delayMs) => message.nakConfirmed(delayMs),
    loadThrottles: (invocation) => d.throttles.load(invocation),
    saveThrottles: (invocation, count) => d.throttles.save(invocation, count),
  };
}

/** Starts the supervisor of one queue whose stream and consumer provisionWorker made. */
export async function startQueue(config: Config, provisioned: ProvisionedQueue, d: QueueDeps): Promise<QueueSupervisor> {
  const { served, spec, consumer: consumerInfo } = provisioned;
  const logger = d.logger.child({ queue: served.name });
  // The consumer's own ack_wait is the truth when an operator created it.
  const ackWaitMs = millis(consumerInfo.config.ack_wait ?? 0) || config.worker.ackWaitMs;
  const consumer = await d.js.consumers.get(spec.stream, spec.durable);
  const supervisor = new QueueSupervisor({
    queue: served.name,
    maxInflight: served.maxInflight,
    ackExtendIntervalMs: ackExtendIntervalMs(ackWaitMs),
    pull: pullSource(
      d.queue,
      consumer,
      {
        expiresMs: 10_000,
        queueRequests: { defaultNamespace: config.functions.defaultNamespace, maxEventAgeMs: config.deadLetters.maxEventAgeMs },
      },
      logger,
      d.confirmer,
    ),
    machine: withEffects(queueEffects(config, served, d, logger)),
    settingsFor: (invocation) => d.settings(invocation.callId),
    handlePoison: async (message, reasons, raw) => {
      // The pull source hands over the undecodable message itself (src/queue/pull.ts).
      await d.deadLetter(raw as RawMessage, {
        reason: 'poison',
        queue: served.name,
        attempts: message.deliveryCount,
        error: reasons.join('; '),
        atMs: Date.now(),
      });
      await message.ackAck();
    },
    events: supervisorEvents(logger, config.log.writeDebug, d.metrics),
  });
  supervisor.start();
  logger.info({ maxInflight: served.maxInflight, upstreamTimeoutMs: served.upstreamTimeoutMs, ackWaitMs, consumer: spec.durable }, 'worker pulling');
  return supervisor;
}
