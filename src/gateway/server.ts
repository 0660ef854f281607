import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { FunctionResolver } from '../functions/index.js';
import type { HttpDispatcher } from '../http/client.js';
import type { InvocationPublisher } from '../queue/publisher.js';
import type { CancellationRequests } from '../status/cancellations.js';
import type { RecordStore } from '../status/records.js';
import type { QueuedGroups } from '../status/queued-groups.js';
import type { IdempotencyClaims } from '../status/idempotency.js';
import type { ResultStore } from '../status/results.js';
import type { QueueStats } from '../status/queue-stats.js';
import type { PayloadStore } from '../queue/payload-store.js';
import type { GatewayMetrics } from '../telemetry/metrics.js';
import type { Registry } from 'prom-client';
import { installMetrics } from './metrics-hooks.js';
import { installAuth, installCrossSiteGuard, NO_AUTH, type GatewayAuth } from './auth/index.js';
import { DEFAULT_HEADER_LIMITS, headerLimitServerOptions, installHeaderCountLimit, type HeaderLimits } from './header-limits.js';
import type { QueueRouter } from './queue-router.js';
import { installErrorHandlers } from './http-errors.js';
import { installProtocolRefusals, PROTOCOL_SERVER_OPTIONS } from './protocol-refusals.js';
import { asyncFunctionRoutes, enqueuePortsOf, type AsyncFunctionRouteDeps } from './routes/async-function.js';
import { createFastEnqueue, type FastEnqueue } from './fast-enqueue.js';
import { installFrontDoor } from './front-door.js';
import { asyncBatchRoutes } from './routes/async-batch.js';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { BatchCompletionPorts } from '../callback/batch-done.js';
import type { BatchStore } from '../status/batches.js';
import type { BatchMetrics } from '../telemetry/metrics.js';
import { invocationStatusRoutes } from './routes/invocation-status.js';
import { functionRoutes } from './routes/function.js';
import { systemRoutes } from './routes/system.js';
import { bulkRoutes } from './routes/bulk.js';
import type { BulkOperations } from './bulk.js';
import { inFlightRoutes } from './routes/inflight.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { consoleRoutes, type ConsoleRouteDeps } from './routes/console.js';
import type { DeadLetterBrowser } from './dead-letters.js';
import type { InFlightGatherer } from './inflight.js';
import { createTargetGuard } from '../callback/target-guard.js';
import { confirmWithin, deadlineAfter } from '../queue/deadline.js';
import type { CallbackCheck } from './enqueue.js';

/** How long the gateway waits for DNS when checking a callback host; slower names pass, delivery decides. */
export const CALLBACK_CHECK_TIMEOUT_MS = 1_000;

/** The submit-time callback check for a `callback_allow` list. */
export function checkCallbackWith(callbackAllow: readonly string[]): CallbackCheck {
  const guard = createTargetGuard(callbackAllow);
  return Object.assign((url: URL) => guard.check(url, CALLBACK_CHECK_TIMEOUT_MS), { allowed: (href: string) => guard.allowed(href) });
}

export interface GatewayOptions {
  readonly readTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly maxBodyBytes: number;
  /**
   * Largest async body, bytes (`max_large_body_size`): one above maxBodyBytes is streamed into
   * `deps.payloads` (claim check). Default 0: no large bodies.
   */
  readonly maxLargeBodyBytes?: number;
  readonly defaultNamespace: string;
  /** Longest delay X-Delay-Seconds / X-Not-Before may ask for, ms (`max_delay`). */
  readonly maxDelayMs: number;
  /** Header count and size limits (`max_header_count`, `max_header_size`); default 100 fields, 16 KiB. */
  readonly headerLimits?: HeaderLimits;
  /**
   * Longest wait for JetStream per request, ms (`publish_timeout`): the PubAck and every KV round
   * trip of an async request together, a status read, a cancellation. Default 1000.
   */
  readonly publishTimeoutMs?: number;
  /** Most items of one batch (`max_batch_items`); default 10000. */
  readonly maxBatchItems?: number;
  /** Largest batch body, bytes (`max_batch_bytes`); default 64 MiB. */
  readonly maxBatchBytes?: number;
  /** Read requests on the raw socket first (`front_door`, front-door.ts); default true. */
  readonly frontDoor?: boolean;
}

/** What `POST/GET/DELETE /async-batch/` need besides the async route's ports; without them the batch routes are not served. */
export interface GatewayBatchDeps {
  readonly jsm: JetStreamManager;
  readonly batches: BatchStore;
  readonly completion: BatchCompletionPorts;
  readonly metrics: BatchMetrics;
}

/** The settings fastify hands its server factory (its own options, defaults applied) that an HTTP/1 server takes. */
interface ServerSettings {
  readonly http?: ServerOptions;
  readonly keepAliveTimeout: number;
  readonly requestTimeout: number;
  readonly connectionTimeout: number;
  readonly maxRequestsPerSocket?: number;
}

/** The HTTP/1 server fastify makes for itself (fastify/lib/server.js), with our own request listener in front. */
function plainServer(settings: ServerSettings, listener: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer(settings.http ?? {}, listener);
  server.keepAliveTimeout = settings.keepAliveTimeout;
  server.requestTimeout = settings.requestTimeout;
  server.setTimeout(settings.connectionTimeout);
  if (settings.maxRequestsPerSocket !== undefined && settings.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = settings.maxRequestsPerSocket;
  return server;
}

function noSchemaCompiler(): never {
  throw new Error('asyncfn gateway routes declare no schemas: the schema compilers are not loaded');
}

/** `publish_timeout`'s default, ms. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 1_000;

export interface GatewayDeps {
  readonly resolver: FunctionResolver;
  readonly publisher: InvocationPublisher;
  readonly router: QueueRouter;
  readonly records: RecordStore;
  /** The default path's grouped `queued` records (src/status/queued-groups.ts); absent, one record per invocation. */
  readonly queuedGroups?: QueuedGroups | undefined;
  readonly cancellations: CancellationRequests;
  readonly idempotency: IdempotencyClaims;
  readonly results: ResultStore;
  /** The payload bucket of large bodies; absent, max_body_size is the async route's limit. */
  readonly payloads?: PayloadStore;
  readonly dispatcher: HttpDispatcher;
  readonly isReady: () => boolean;
  readonly logger: Logger;
  readonly registry: Registry;
  /** What `/metrics` answers; default the registry's text. With `gateway_processes` > 1, every process's (cluster-metrics.ts). */
  readonly readMetrics?: (() => Promise<string>) | undefined;
  readonly metrics: GatewayMetrics;
  readonly now?: () => number;
  /** Credentials checked per route group (loaded by loadGatewayAuth); default: no auth. */
  readonly auth?: GatewayAuth;
  /**
   * The submit-time check of X-Callback-Url (the SSRF guard with `callback_allow`); default: the
   * guard with an empty allowlist, so only public addresses pass.
   */
  readonly checkCallback?: CallbackCheck;
  /** Cancel and replay by filter (`POST /system/invocations/cancel`, `/system/dead-letters/replay`); absent: no such routes. */
  readonly bulk?: BulkOperations;
  /** Reads every queue's counts (src/status/queue-stats.ts) for `GET /system/queues`; absent: no such route. */
  readonly readQueues?: () => Promise<readonly QueueStats[]>;
  /** Gathers every worker's in-flight view (`GET /system/inflight`); absent: no such route. */
  readonly inFlight?: InFlightGatherer;
  /** Lists, shows and purges dead letters (`GET`/`DELETE /system/dead-letters`); absent: no such routes. */
  readonly deadLetters?: DeadLetterBrowser;
  /** The batch routes' stores (src/gateway/routes/async-batch.ts); absent: no batch routes. */
  readonly batch?: GatewayBatchDeps;
  /**
   * The key progress URLs are signed with (src/status/progress-key.ts), the workers' key; default:
   * a random one, so that no progress URL is accepted.
   */
  readonly progressKey?: Uint8Array;
  /** The web console's built files and settings (`console`, src/gateway/routes/console.ts); absent: no `/ui` routes. */
  readonly console?: ConsoleRouteDeps;
}

/**
 * Builds the gateway's HTTP server (not yet listening): fastify for every route, with the common
 * async request taken first by fast-enqueue.ts (fastify's per-request cost was about as much as
 * the rest of that request's work; BENCHMARKS.md), read on the raw socket by the front door
 * (front-door.ts) or else on node:http. Fastify brings encapsulated body parsers, limits and
 * inject() to everything else.
 */
export async function buildGateway(opts: GatewayOptions, deps: GatewayDeps): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  const headerLimits = opts.headerLimits ?? DEFAULT_HEADER_LIMITS;
  const limitOptions = headerLimitServerOptions(headerLimits);
  const { requireHostHeader, ...protocolOptions } = PROTOCOL_SERVER_OPTIONS;
  // The common async request is answered without fastify (fast-enqueue.ts), on the raw socket when
  // the front door is on (front-door.ts); set once the routes are.
  let takeRequest: FastEnqueue | undefined;
  const app = fastify({
    serverFactory: (handler, options) => {
      const server = plainServer(options as unknown as ServerSettings, (req, res) => takeRequest?.(req, res) || handler(req, res));
      if (opts.frontDoor ?? true) installFrontDoor(server, { enqueue: () => takeRequest, maxHeaderBytes: headerLimits.maxHeaderBytes });
      return server;
    },
    ...limitOptions,
    ...protocolOptions,
    http: { ...limitOptions.http, requireHostHeader },
    logger: false,
    bodyLimit: opts.maxBodyBytes,
    // read_timeout: the whole request must arrive within it.
    requestTimeout: opts.readTimeoutMs,
    // write_timeout: a socket idle for longer is closed (a client not reading its response).
    connectionTimeout: opts.writeTimeoutMs,
    forceCloseConnections: 'idle',
    // No route declares a schema (bodies are the function's bytes; headers are read by hand): the
    // schema compilers (ajv, fast-json-stringify, ~8 MiB of RSS) are never loaded. A route that
    // declared one would fail at startup, not silently go unvalidated.
    schemaController: { compilersFactory: { buildValidator: noSchemaCompiler, buildSerializer: noSchemaCompiler } },
  });
  installErrorHandlers(app, deps.logger, opts.maxBodyBytes);
  const protocol = installProtocolRefusals(app);
  // Before any route: these hooks refuse a request before its handler (or body parser) runs.
  // Limits first, so an oversized request is refused without spending an HMAC on it.
  installHeaderCountLimit(app, headerLimits);
  installCrossSiteGuard(app);
  installAuth(app, deps.auth ?? NO_AUTH);
  const countResponse = installMetrics(app, deps.registry, deps.metrics, deps.readMetrics);
  await app.register(systemRoutes, { resolver: deps.resolver, isReady: deps.isReady, readQueues: deps.readQueues, now });
  if (deps.bulk) await app.register(bulkRoutes, { bulk: deps.bulk, isReady: deps.isReady, now });
  if (deps.inFlight) {
    const publishTimeoutMs = opts.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    const readProgress = async (callId: string) =>
      (await confirmWithin('the record read', deadlineAfter(publishTimeoutMs, performance.now()), () => deps.records.get(callId)))?.progress;
    await app.register(inFlightRoutes, { gather: deps.inFlight, isReady: deps.isReady, readProgress });
  }
  if (deps.deadLetters) await app.register(deadLetterRoutes, { deadLetters: deps.deadLetters, isReady: deps.isReady, now });
  if (deps.console) await app.register(consoleRoutes, deps.console);
  await app.register(invocationStatusRoutes, {
    records: deps.records,
    results: deps.results,
    resolver: deps.resolver,
    defaultNamespace: opts.defaultNamespace,
    isReady: deps.isReady,
    publishTimeoutMs: opts.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
  });
  const asyncDeps: AsyncFunctionRouteDeps = {
    resolver: deps.resolver,
    publisher: deps.publisher,
    router: deps.router,
    records: deps.records,
    queuedGroups: deps.queuedGroups,
    cancellations: deps.cancellations,
    idempotency: deps.idempotency,
    maxDelayMs: opts.maxDelayMs,
    isReady: deps.isReady,
    logger: deps.logger,
    defaultNamespace: opts.defaultNamespace,
    maxBodyBytes: opts.maxBodyBytes,
    maxLargeBodyBytes: opts.maxLargeBodyBytes ?? 0,
    payloads: deps.payloads,
    now,
    checkCallback: deps.checkCallback ?? checkCallbackWith([]),
    publishTimeoutMs: opts.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
    progressKey: deps.progressKey ?? randomBytes(32),
    started: countResponse.started,
  };
  await app.register(asyncFunctionRoutes, asyncDeps);
  takeRequest = createFastEnqueue({
    ports: enqueuePortsOf(asyncDeps),
    read: { defaultNamespace: opts.defaultNamespace, maxDelayMs: opts.maxDelayMs, now },
    maxBodyBytes: opts.maxBodyBytes,
    maxHeaderCount: headerLimits.maxHeaderCount,
    invokeAuth: (deps.auth ?? NO_AUTH).invoke !== undefined,
    isReady: deps.isReady,
    protocol,
    count: countResponse,
    logger: deps.logger,
  });
  if (deps.batch) {
    await app.register(asyncBatchRoutes, {
      ...deps.batch,
      resolver: deps.resolver,
      checkCallback: deps.checkCallback ?? checkCallbackWith([]),
      router: deps.router,
      records: deps.records,
      idempotency: deps.idempotency,
      publisher: deps.publisher,
      cancellations: deps.cancellations,
      logger: deps.logger,
      defaultNamespace: opts.defaultNamespace,
      isReady: deps.isReady,
      maxBodyBytes: opts.maxBodyBytes,
      maxBatchItems: opts.maxBatchItems ?? 10_000,
      maxBatchBytes: opts.maxBatchBytes ?? 64 * 1024 * 1024,
      publishTimeoutMs: opts.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
      now,
    });
  }
  await app.register(functionRoutes, {
    resolver: deps.resolver,
    started: countResponse.started,
    dispatcher: deps.dispatcher,
    defaultNamespace: opts.defaultNamespace,
    upstreamTimeoutMs: opts.upstreamTimeoutMs,
    now,
  });
  return app;
}
