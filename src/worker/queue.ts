import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { millis } from '@nats-io/nats-core';
import { ackExtendIntervalMs } from '../../actors/ack-extender.js';
import type { InvocationEffects } from '../../actors/invocation.effects.js';
import { withEffects } from '../../actors/invocation.machine.js';
import type { InvocationSettings, ResultStorage } from '../../actors/invocation.types.js';
import type { RetryPolicy } from '../../actors/retry.policy.js';
import { QueueSupervisor, type SettlementReport } from '../../actors/queue.supervisor.js';
import type { deliverCallback } from '../callback/deliver.js';
import { encodeCallback, handOffCallback } from '../callback/stored.js';
import type { Config, QueueServed } from '../config/index.js';
import type { FunctionResolver } from '../functions/index.js';
import { functionPolicies } from '../functions/annotations.js';
import type { HttpDispatcher } from '../http/client.js';
import { invokeFunction } from '../functions/invoke.js';
import type { QueueConnection } from '../nats/connection.js';
import type { DeadLetterMeta, RawMessage } from '../queue/dead-letter.js';
import type { Confirmer } from '../queue/confirmer.js';
import { encodeEnvelope, type Invocation } from '../queue/envelope.js';
import { storedQueueRequest } from '../queue/openfaas-request.js';
import { pullSource } from '../queue/pull.js';
import { RECORDS_BUCKET, type ProvisionedQueue } from '../queue/topology.js';
import { encodeRecord, type RecordStore } from '../status/records.js';
import type { ResultStore } from '../status/results.js';
import type { PayloadStore } from '../queue/payload-store.js';
import type { AttemptLedger } from '../status/attempt-ledger.js';
import type { Logger } from '../telemetry/logger.js';
import { LATE_DELIVERY_PLACES, type WorkerMetrics } from '../telemetry/metrics.js';
import { recordStateOf, supervisorEvents } from './events.js';
import { priorRecordOf, recordWriter } from './records.js';
import type { SharedRateLimiter } from '../flow/index.js';
import { startLaneDiscovery } from './lanes.js';
import { adaptiveLimits } from './adaptive.js';

/** What every queue of a worker shares. */
export interface QueueDeps {
  readonly queue: QueueConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly resolver: FunctionResolver;
  readonly dispatcher: HttpDispatcher;
  /** The direct callback attempt, bounded by callback_first_attempt_timeout. */
  readonly deliver: ReturnType<typeof deliverCallback>;
  readonly deadLetter: (original: RawMessage, meta: DeadLetterMeta) => Promise<void>;
  /** Policy, cancellation, clock and jitter for one delivery. */
  readonly settings: (invocation: Invocation) => InvocationSettings;
  /**
   * The invocation ended otherwise than cancelled (succeeded, failed, dead-lettered): a
   * cancellation asked after its function answered must not outlive it (src/status/cancellations.ts).
   */
  readonly ended?: ((invocation: Invocation) => void) | undefined;
  /** The worker's retry policy, which a function's annotations may override. */
  readonly retryPolicy: RetryPolicy;
  readonly records: RecordStore;
  /** The worker connection's confirmer: double acks and final records over one shared inbox. */
  readonly confirmer: Confirmer;
  readonly results: ResultStore;
  /** The attempt ledger: attempts started and throttled deliveries per invocation (actors/attempt.policy.ts); never touched by a first delivery that runs. */
  readonly ledger: AttemptLedger;
  readonly logger: Logger;
  readonly metrics: WorkerMetrics;
  /** Large bodies (claim check), read per attempt and deleted once their invocation is final. */
  readonly payloads?: PayloadStore | undefined;
  /** Rate limits shared by every worker (com.asyncfn.rate_limit, key_rate_limit). */
  readonly rateLimiter?: SharedRateLimiter | undefined;
  /** Counts a batch item's final state (src/worker/batches.ts); default counts nothing. */
  readonly countBatchItem?: InvocationEffects['countBatchItem'] | undefined;
  /** Signs each attempt's X-Asyncfn-Progress-Url; absent without `gateway_public_url`. */
  readonly progressUrl?: ((callId: string, attemptEndsAtMs: number) => string | undefined) | undefined;
  /** This worker's name (hostname:pid), written in its `running` records. */
  readonly worker: string;
  /**
   * Asks the worker a redelivery's `running` record names whether it still runs the invocation,
   * waiting at most `timeoutMs` (src/worker/holders.ts); absent: never asked, the redelivery runs.
   */
  readonly askHolder?: ((worker: string, invocation: Invocation, timeoutMs: number) => Promise<boolean>) | undefined;
}

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
export function queueEffects(config: Config, served: QueueServed, d: QueueDeps, logger: Logger, ackWaitMs: number): InvocationEffects {
  const policyFor = functionPolicies(d.retryPolicy, served.upstreamTimeoutMs);
  const invoke = invokeFunction({
    resolver: d.resolver,
    policyFor,
    dispatcher: d.dispatcher,
    upstreamTimeoutMs: served.upstreamTimeoutMs,
    queue: served.name,
    payloads: d.payloads,
    progressUrl: d.progressUrl,
  });
  return {
    invokeFunction: invoke,
    deliverCallback: (request) => d.deliver(request),
    handOffCallback: (request) => handOffCallback(d.js, served.name, request, { payloads: d.payloads }),
    deadLetterCallback: (request) => {
      const { headers, data } = encodeCallback(served.name, request, request.error, request.status);
      // One callback attempt was made: the direct one. publishDeadLetter drops the body that does not fit.
      return d.deadLetter({ headers, data }, { reason: 'callbackFailed', queue: served.name, attempts: 1, error: request.error, atMs: Date.now() });
    },
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
      worker: d.worker,
      logger,
      putConfirmed: (record) => d.confirmer.kvPut(RECORDS_BUCKET, record.callId, encodeRecord(record)).then(written),
    }),
    releasePayload: async (invocation) => {
      if (!d.payloads || !invocation.bodyRef) return;
      try {
        await d.payloads.delete(invocation.bodyRef.name);
      } catch (err) {
        // The bucket's age limit (records_ttl) removes it in the end.
        logger.warn({ err, callId: invocation.callId, object: invocation.bodyRef.name }, 'could not delete the stored body of a finished invocation');
      }
    },
    countBatchItem: d.countBatchItem ?? (() => Promise.resolve()),
    ackAck: (message) => message.ackAck(),
    scheduleRetry: (message, delayMs) => message.nakConfirmed(delayMs),
    loadLedger: (invocation) => d.ledger.load(invocation),
    saveLedger: (invocation, entry) => d.ledger.save(invocation, entry),
    priorRecord: async (invocation) => priorRecordOf(invocation, await d.records.get(invocation.callId), d.worker),
    // Within one sweep interval: a holder that cannot answer by then is taken to hold it.
    askHolder: d.askHolder && ((worker, invocation) => d.askHolder!(worker, invocation, ackExtendIntervalMs(ackWaitMs))),
    // A redelivery's function policy before the call (the resolver answers from its cache).
    policyOf: async (invocation) => {
      const fn = await d.resolver.resolve({ name: invocation.functionName, namespace: invocation.namespace });
      return fn ? policyFor(fn.annotations).policy : d.retryPolicy;
    },
  };
}

/** One queue a worker serves: its supervisor, and the discovery of its function lanes. */
export interface ServedQueue {
  readonly supervisor: QueueSupervisor;
  /** The queue's name. */
  readonly queue: string;
  /** Its max_inflight on this worker. */
  readonly maxInflight: number;
  /** The invocations in flight on it now (QueueSupervisor.inFlight). */
  inFlight(): ReturnType<QueueSupervisor['inFlight']>;
  /** Cancels a running invocation of this queue; whether it ran here. */
  cancel(callId: string): boolean;
  /** Whether this queue runs the invocation now; its ack deadline is then extended (QueueSupervisor.holds). */
  holds(callId: string, enqueuedAtMs: number): boolean;
  /** Stops pulling (every lane) and waits up to `graceMs` for the running invocations (QueueSupervisor.drain). */
  drain(graceMs: number): ReturnType<QueueSupervisor['drain']>;
}

/** Starts the supervisor of one queue whose stream and consumer provisionWorker made, and its lanes. */
export async function startQueue(config: Config, provisioned: ProvisionedQueue, d: QueueDeps): Promise<ServedQueue> {
  const { served, spec, consumer: consumerInfo } = provisioned;
  const logger = d.logger.child({ queue: served.name });
  // The consumer's own ack_wait is the truth when an operator created it.
  const ackWaitMs = millis(consumerInfo.config.ack_wait ?? 0) || config.worker.ackWaitMs;
  const consumer = await d.js.consumers.get(spec.stream, spec.durable);
  const pullOptions = {
    expiresMs: 10_000,
    queueRequests: { defaultNamespace: config.functions.defaultNamespace, maxEventAgeMs: config.deadLetters.maxEventAgeMs },
    // A first delivery given back unworked (it reached a pull the lane supervisor had just ended)
    // started no attempt: without this entry its redelivery would take attempt 1 as made.
    noFirstAttempt: (invocation: Invocation) => d.ledger.save(invocation, { attempts: 0, throttled: 0 }),
  };
  /** Each function's fixed limit on this worker (its annotation), over its own lane and its keys' lanes. */
  const groupLimits = new Map<string, number>();
  const adaptive = adaptiveLimits({
    enabled: config.worker.adaptiveConcurrency,
    max: served.maxInflight,
    fixed: groupLimits,
    queueName: served.name,
    metrics: d.metrics,
  });
  const events = supervisorEvents(logger, config.log.writeDebug, d.metrics);
  // Zero from the start, so that a dashboard shows 0 rather than nothing until the first one.
  for (const where of LATE_DELIVERY_PLACES) d.metrics.lateDeliveries.inc({ queue_name: served.name, where }, 0);
  const supervisor = new QueueSupervisor({
    queue: served.name,
    maxInflight: served.maxInflight,
    ackExtendIntervalMs: ackExtendIntervalMs(ackWaitMs),
    pull: pullSource(d.queue, consumer, pullOptions, logger, d.confirmer),
    groupLimit: (group) => adaptive.limit(group),
    machine: withEffects(queueEffects(config, served, d, logger, ackWaitMs)),
    settingsFor: (invocation) => d.settings(invocation),
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
    events: {
      ...events,
      settled: (report) => {
        events.settled(report);
        if (d.ended !== undefined && endsUncancelled(report)) d.ended(report.invocation);
        if (adaptive.settled(report, supervisor.running)) supervisor.poke();
      },
    },
  });
  supervisor.start();
  const discovery = provisioned.lanes
    ? startLaneDiscovery({
        supervisor,
        js: d.js,
        jsm: d.jsm,
        spec,
        ackWaitMs,
        resolver: d.resolver,
        rateLimiter: d.rateLimiter,
        pullOf: async (durable) => pullSource(d.queue, await d.js.consumers.get(spec.stream, durable), pullOptions, logger, d.confirmer),
        groupLimits,
        metrics: d.metrics,
        queueName: served.name,
        logger,
      })
    : undefined;
  logger.info(
    { maxInflight: served.maxInflight, upstreamTimeoutMs: served.upstreamTimeoutMs, ackWaitMs, consumer: spec.durable, lanes: provisioned.lanes },
    'worker pulling',
  );
  return {
    supervisor,
    queue: served.name,
    maxInflight: served.maxInflight,
    inFlight: () => supervisor.inFlight(),
    cancel: (callId) => supervisor.cancel(callId),
    holds: (callId, enqueuedAtMs) => supervisor.holds(callId, enqueuedAtMs),
    drain: (graceMs) => {
      discovery?.stop();
      return supervisor.drain(graceMs);
    },
  };
}

/** Whether the settlement ends the invocation, and not as cancelled. */
function endsUncancelled(report: SettlementReport): boolean {
  const state = recordStateOf(report);
  return state !== undefined && state !== 'retrying' && state !== 'cancelled';
}

/** What a confirmed record write resolves with: nothing (its sequence is not needed). */
function written(): void {}
