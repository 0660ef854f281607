import { jetstreamManager } from '@nats-io/jetstream';
import { millis } from '@nats-io/nats-core';
import { fromPromise } from 'xstate';
import { ackExtendIntervalMs } from '../../actors/ack-extender.js';
import { invocationMachine } from '../../actors/invocation.machine.js';
import { QueueSupervisor, type SupervisorEvents } from '../../actors/queue.supervisor.js';
import { NO_RETRIES } from '../../actors/retry.policy.js';
import { deliverCallback } from '../callback/deliver.js';
import type { Config } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { FunctionResolver } from '../functions/index.js';
import { invokeFunction } from '../functions/invoke.js';
import { createHttpClient } from '../http/client.js';
import { connectQueue } from '../queue/connection.js';
import { ensureConsumer, ensureStream } from '../queue/provision.js';
import { pullSource } from '../queue/pull.js';
import type { Logger } from '../telemetry/logger.js';
import { queueSpec } from './gateway.js';
import { VERSION } from './version.js';

export interface RunningWorker {
  /** Stops pulling, waits up to `graceMs` for in-flight invocations, releases the rest, disconnects. */
  close(graceMs?: number): Promise<void>;
}

/** How long one callback POST may take, ms. */
const CALLBACK_TIMEOUT_MS = 30_000;

/** Connects to NATS, provisions the stream and consumer, and runs the queue's supervisor. */
export async function startWorker(
  config: Config,
  deps: { resolver: FunctionResolver; logger: Logger },
): Promise<RunningWorker> {
  const logger = deps.logger.child({ component: 'worker', queue: config.queue.stream });
  if (!config.nats.url) throw new ConfigError(['NATS_URL (or faas_nats_address) is required for the worker']);
  const queue = await connectQueue({ url: config.nats.url, name: 'asyncfn-worker', logger });
  try {
    const spec = queueSpec(config);
    const jsm = await jetstreamManager(queue.nc);
    await ensureStream(jsm, spec, logger);
    const consumerInfo = await ensureConsumer(jsm, spec, config.worker.maxInflight, logger);
    // The consumer's own ack_wait is the truth when an operator created it.
    const ackWaitMs = millis(consumerInfo.config.ack_wait ?? 0) || config.worker.ackWaitMs;
    const consumer = await jsm.jetstream().consumers.get(spec.stream, spec.durable);

    const dispatcher = createHttpClient({ connectionsPerOrigin: config.worker.maxInflight });
    const invoke = invokeFunction({ resolver: deps.resolver, dispatcher, upstreamTimeoutMs: config.worker.upstreamTimeoutMs });
    const deliver = deliverCallback({ dispatcher, timeoutMs: CALLBACK_TIMEOUT_MS, version: VERSION });
    const machine = invocationMachine.provide({
      actors: {
        invokeFunction: fromPromise(({ input, signal }) => invoke(input, signal)),
        deliverCallback: fromPromise(({ input, signal }) => deliver(input, signal)),
      },
    });
    const supervisor = new QueueSupervisor({
      queue: spec.stream,
      maxInflight: config.worker.maxInflight,
      ackExtendIntervalMs: ackExtendIntervalMs(ackWaitMs),
      pull: pullSource(queue, consumer, { expiresMs: 10_000 }, logger),
      machine,
      policyFor: () => NO_RETRIES,
      events: logEvents(logger, config.log.writeDebug),
    });
    supervisor.start();
    logger.info({ maxInflight: config.worker.maxInflight, ackWaitMs, consumer: spec.durable }, 'worker pulling');

    return {
      close: async (graceMs = config.worker.shutdownGraceMs) => {
        const { released, unsettled } = await supervisor.drain(graceMs);
        if (released > 0) logger.warn({ released }, 'released unfinished invocations back to the queue');
        if (unsettled > 0) logger.warn({ unsettled }, 'stopped during callbacks; JetStream redelivers those after ack_wait');
        // Closing NATS first flushes the naks; then whatever HTTP is still open is cut.
        await queue.close();
        await dispatcher.destroy();
      },
    };
  } catch (err) {
    await queue.close();
    throw err;
  }
}

/** One log line per settled invocation, carrying its call id, function and attempt. */
function logEvents(logger: Logger, writeDebug: boolean): SupervisorEvents {
  const decoder = new TextDecoder();
  return {
    settled: ({ invocation, attempt, settlement, outcome, callbackError, ackError }) => {
      const fields = {
        callId: invocation.callId,
        function: invocation.functionName,
        namespace: invocation.namespace,
        attempt,
        settlement,
        status: outcome?.status,
        durationMs: outcome ? Math.round(outcome.durationMs) : undefined,
        error: outcome?.transportError,
        callbackError,
        ackError,
        ...(writeDebug && outcome ? { responseBody: decoder.decode(outcome.body) } : {}),
      };
      if (callbackError || ackError || settlement === 'crashed') logger.warn(fields, 'invocation settled with errors');
      else logger.info(fields, 'invocation settled');
    },
    poison: (_queue, reasons) => logger.error({ reasons }, 'terminated an undecodable message'),
    pullFailed: (_queue, error) => logger.warn({ err: error }, 'pull request failed; retrying'),
  };
}
