import { z } from 'zod';
import { isQueueName } from './queue-name.js';
import { TracingSettingsSchema } from './tracing.js';

/**
 * The shape of asyncfn's configuration: one zod schema per slice, each field documented where it
 * is declared, and the types inferred from them (so a type and its check cannot disagree).
 * Durations are in milliseconds and sizes in bytes, whatever syntax the operator used; each
 * field names the variable it comes from (variables.ts parses them, load.ts maps them here).
 * The schema checks a finished Config: loadConfig has already reported bad variables by name, so
 * a failure on a loaded config is a bug in the mapping; for testConfig it catches impossible
 * overrides. Strict objects catch misspelt override keys that a cast let through.
 */

export const STORAGE_TYPES = ['file', 'memory'] as const;
export const FUNCTION_MODES = ['file', 'template', 'gateway'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_FORMATS = ['json', 'console'] as const;
export const BACKOFF_MODES = ['exponential', 'full', 'equal'] as const;
export const INVOKE_AUTH_MODES = ['none', 'basic', 'bearer'] as const;
export { QUEUE_NAME } from './queue-name.js';

const port = z.int().min(0).max(65_535);
const name = z.string().min(1);
const ms = z.number().positive();
const statuses = z.array(z.int().min(100).max(599)).readonly();

/** NATS credentials; at most one of creds, nkey seed, token or user/password is used. */
export const NatsAuthConfigSchema = z
  .strictObject({
    /** A decentralized-auth `.creds` file (JWT + seed) (`nats_creds_file`). */
    credsFile: name.optional(),
    /** A file holding an NKEY user seed, `SU...` (`nats_nkey_seed_file`). */
    nkeySeedFile: name.optional(),
    /** A file holding an authorization token (`nats_token_file`). */
    tokenFile: name.optional(),
    /** User name for user/password auth (`nats_user`); not a secret. */
    user: name.optional(),
    /** A file holding the password of `user` (`nats_password_file`). */
    passwordFile: name.optional(),
  })
  .readonly();
export type NatsAuthConfig = z.output<typeof NatsAuthConfigSchema>;

/** Files for TLS towards NATS; setting any of them turns TLS on. */
export const NatsTlsConfigSchema = z
  .strictObject({
    /** PEM CA bundle that signs the servers' certificates (`nats_tls_ca_file`). */
    caFile: name.optional(),
    /** PEM client certificate for mutual TLS (`nats_tls_cert_file`); needs keyFile. */
    certFile: name.optional(),
    /** PEM private key of certFile (`nats_tls_key_file`). */
    keyFile: name.optional(),
  })
  .readonly();
export type NatsTlsConfig = z.output<typeof NatsTlsConfigSchema>;

/** Where the NATS servers are. */
export const NatsConfigSchema = z
  .strictObject({
    /**
     * One or more comma-separated server URLs (cluster seeds), each nats://, tls://, ws:// or wss://.
     * From `NATS_URL`, else `nats://${faas_nats_address}:${faas_nats_port}` (port default 4222).
     * Default: undefined, meaning "not configured": `asyncfn up` then starts a local nats-server.
     */
    url: name.optional(),
    /**
     * How asyncfn proves who it is to NATS. Every secret is a file path, never a value, so that
     * no secret sits in the environment, the config file or a log line. All default undefined.
     */
    auth: NatsAuthConfigSchema,
    /** TLS towards NATS: a CA to trust and an optional client certificate (mutual TLS). */
    tls: NatsTlsConfigSchema,
  })
  .readonly();
export type NatsConfig = z.output<typeof NatsConfigSchema>;

/** The JetStream stream and consumer that hold queued requests; names match the OpenFaaS queue-worker. */
export const QueueConfigSchema = z
  .strictObject({
    /** Stream name. Fixed: "faas-request". */
    stream: name,
    /** Subject the gateway publishes to. Fixed: "faas-request". */
    subject: name,
    /** Durable consumer shared by all workers. Fixed: "faas-workers". */
    durable: name,
    /** Stream replicas, 1–5 (`stream_replication`). Default 1. */
    replicas: z.int().min(1).max(5),
    /** Stream storage (`stream_storage`). Default "file", so queued requests survive a restart. */
    storage: z.enum(STORAGE_TYPES),
    /**
     * Most messages delivered but not yet acked, across all workers (`max_ack_pending`), ≥ max_inflight.
     * Default maxInflight + 10000: room for retries waiting in JetStream.
     */
    maxAckPending: z.int().min(1),
  })
  .readonly();
export type QueueConfig = z.output<typeof QueueConfigSchema>;

/** One named queue a worker serves: its own stream, consumer and limits. */
export const QueueServedSchema = z
  .strictObject({
    /** Queue name = stream name = subject; functions choose it with `com.openfaas.queue`. */
    name: z.string().refine(isQueueName, { error: 'is not a queue name: 1-64 letters, digits, - and _, and not asyncfn, asyncfn-*, KV_*, OBJ_* or _INBOX' }),
    /** Invocations of this queue running at once on one worker. Default `max_inflight`. */
    maxInflight: z.int().min(1),
    /** Longest function call for this queue, ms. Default `upstream_timeout`. */
    upstreamTimeoutMs: ms,
  })
  .readonly();
export type QueueServed = z.output<typeof QueueServedSchema>;

/** The queue worker: pulls requests, invokes functions, posts callbacks. */
export const WorkerConfigSchema = z
  .strictObject({
    /** Requests one worker runs at once (`max_inflight`), ≥ 1. Default 1, as in OpenFaaS. */
    maxInflight: z.int().min(1),
    /** Milliseconds JetStream waits for an ack before redelivering (`ack_wait`), ≥ 1000. Default 60000 (60s). */
    ackWaitMs: z.number().min(1_000),
    /** Milliseconds allowed for one function call (`upstream_timeout`), > 0. Default 60000 (60s). */
    upstreamTimeoutMs: ms,
    /** Milliseconds in-flight requests get to finish on shutdown (`shutdown_grace`), ≥ 0. Default 30000 (30s). */
    shutdownGraceMs: z.number().min(0),
    /**
     * Queues this worker serves (`queues`: name[:max_inflight[:upstream_timeout]],...), limits
     * defaulting to max_inflight and upstream_timeout. Default [] = the default queue only.
     */
    queues: z.array(QueueServedSchema).readonly(),
    /** Port of the health and metrics server (`worker_port`). Default 8081. */
    port,
    /** Address the health and metrics server listens on (`worker_host`). Default "0.0.0.0". */
    host: name,
    /**
     * Adaptive concurrency (`adaptive_concurrency`): a throttle (429, or 503 with Retry-After) waits
     * in JetStream without counting as an attempt, and the worker runs fewer calls of that function
     * at once. Default true.
     */
    adaptiveConcurrency: z.boolean(),
    /** Throttled deliveries of one invocation before throttles count as attempts again (`throttle_max_deliveries`), ≥ 1. Default 50. */
    throttleMaxDeliveries: z.int().min(1),
    /**
     * The gateway's base URL as functions reach it (`gateway_public_url`), no trailing slash: each
     * function call gets a signed `X-Asyncfn-Progress-Url` under it. Default undefined: no progress
     * URL (`asyncfn up` sets it to its own gateway).
     */
    gatewayPublicUrl: z.url({ protocol: /^https?$/ }).optional(),
  })
  .readonly();
export type WorkerConfig = z.output<typeof WorkerConfigSchema>;

/** The web console the gateway serves at `/ui` (src/gateway/routes/console.ts). */
export const ConsoleConfigSchema = z
  .strictObject({
    /** Serve it (`console`). Default false; `asyncfn up` turns it on. */
    enabled: z.boolean(),
    /** Directory of the built console (`console_dir`). Default: `dist/console` in asyncfn's package. */
    dir: name,
    /** Link template from an invocation to its traces, with `{call_id}` (`console_trace_url`); "" = no link. Default "". */
    traceUrlTemplate: z.string(),
  })
  .readonly();
export type ConsoleConfig = z.output<typeof ConsoleConfigSchema>;

/** The HTTP gateway that accepts /async-function/ requests. */
export const GatewayConfigSchema = z
  .strictObject({
    /** Listening port (`gateway_port`). Default 8080, as the OpenFaaS gateway. */
    port,
    /** Listening address (`gateway_host`). Default "0.0.0.0". */
    host: name,
    /** Milliseconds to receive a whole request (`read_timeout`), > 0. Default 60000 (60s). */
    readTimeoutMs: ms,
    /** Milliseconds to send a whole response (`write_timeout`), > 0. Default 60000 (60s). */
    writeTimeoutMs: ms,
    /** Milliseconds allowed for a synchronous function call (`upstream_timeout`), > 0. Default 60000 (60s). */
    upstreamTimeoutMs: ms,
    /**
     * Largest request body in bytes (`max_body_size`), ≥ 1. Default 1024000 (1000 KiB): NATS's
     * default max_payload is 1 MiB including headers, so this leaves 24 KiB for the headers.
     */
    maxBodyBytes: z.int().min(1),
    /**
     * Largest async request body in bytes (`max_large_body_size`). A body above `maxBodyBytes` and
     * up to this is streamed into the payload bucket (Object Store, claim check) and the message
     * carries its reference; at or below `maxBodyBytes` it disables that. Default 1073741824 (1 GiB).
     */
    maxLargeBodyBytes: z.int().min(0),
    /**
     * Milliseconds the gateway waits for JetStream, all round trips of one request together (the
     * idempotency claim, the record, the PubAck; a status read or a cancellation), before answering
     * 503 with Retry-After (`publish_timeout`), > 0. Default 1000 (1s).
     */
    publishTimeoutMs: ms,
    /** Most items in one `POST /async-batch/<name>` (`max_batch_items`), ≥ 1. Default 10000. */
    maxBatchItems: z.int().min(1),
    /** Largest `POST /async-batch/<name>` body, bytes (`max_batch_bytes`), ≥ 1. Default 67108864 (64 MiB). */
    maxBatchBytes: z.int().min(1),
    /**
     * Gateway processes sharing the listening port (`gateway_processes`, node:cluster), 1–64.
     * Default 1: one process, no cluster primary. More use more cores: each process has its own
     * NATS connection and serves any route; a primary process forks and supervises them.
     */
    processes: z.int().min(1).max(64),
    /**
     * Read each connection's requests on the raw socket first and answer the common async request
     * there (`front_door`, src/gateway/front-door.ts); any other request hands its connection to
     * node:http. Off: node:http reads every request. Default true.
     */
    frontDoor: z.boolean(),
    /**
     * Publish each invocation on its function's lane subject (`<queue subject>.f.<name>.<namespace>`)
     * so workers pull functions round-robin (`fair_scheduling`). Off: the queue's plain subject,
     * one FIFO for all its functions (OpenFaaS CE). Default true. An `X-Concurrency-Key` always
     * gets its key's lane.
     */
    fairScheduling: z.boolean(),
    /** The web console at `/ui`. */
    console: ConsoleConfigSchema,
  })
  .readonly();
export type GatewayConfig = z.output<typeof GatewayConfigSchema>;

/** How a function name becomes a URL. */
export const FunctionsConfigSchema = z
  .strictObject({
    /**
     * "file" if `functions_file` is set, else "gateway" if `gateway_invoke` is true (call through
     * the OpenFaaS gateway, as the queue-worker does), else "template". Default "template".
     */
    mode: z.enum(FUNCTION_MODES),
    /** Path of the functions file (`functions_file`). Default undefined. */
    file: name.optional(),
    /**
     * URL of a function in "template" mode (`function_url_template`); must contain {name} and may
     * contain {namespace}. Default "http://{name}.{namespace}.svc.cluster.local:8080".
     */
    urlTemplate: z.string().includes('{name}'),
    /** Namespace of names given without one (`function_namespace`). Default "openfaas-fn". */
    defaultNamespace: name,
    /**
     * Base URL of the OpenFaaS gateway, no trailing slash: `http://${faas_gateway_address}:${faas_gateway_port}`,
     * or faas_gateway_address itself if it is already an http(s) URL. Default "http://gateway:8080".
     */
    gatewayUrl: z.url({ protocol: /^https?$/ }),
  })
  .readonly();
export type FunctionsConfig = z.output<typeof FunctionsConfigSchema>;

/** The JavaScript runtime of the long-running commands (gateway, worker, up). */
export const RuntimeConfigSchema = z
  .strictObject({
    /**
     * How far V8's old generation may grow past what survived its last full collection, percent
     * (`heap_growing_percent`, V8's `--heap-growing-percent`), 0–1000; 0 leaves the factor to V8
     * (up to 4× when collecting is cheap). Default 50.
     */
    heapGrowingPercent: z.int().min(0).max(1000),
    /**
     * Function names one gateway or worker process labels its metrics with (`metrics_function_names`):
     * the first ones it counts; every later one is counted as `function_name="_other"`. Default 1000.
     */
    metricsFunctionNames: z.int().min(1),
  })
  .readonly();
export type RuntimeConfig = z.output<typeof RuntimeConfigSchema>;

/** Logging. */
export const LogConfigSchema = z
  .strictObject({
    /** Lowest level written (`log_level`). Default "info". */
    level: z.enum(LOG_LEVELS),
    /**
     * "json" lines for collectors, or "console" lines for people (`log_format`, OpenFaaS's
     * `logs.format`). Default: "console" when stdout is a terminal, "json" otherwise.
     */
    format: z.enum(LOG_FORMATS),
    /**
     * ANSI colours in console lines: true only when stdout is a terminal, so a console log piped
     * to a file or a pager holds no escape codes. Not a variable. Default false.
     */
    colour: z.boolean(),
    /** Log request and response bodies, as OpenFaaS `write_debug` does. Default false. */
    writeDebug: z.boolean(),
  })
  .readonly();
export type LogConfig = z.output<typeof LogConfigSchema>;

/** When and how failed invocations are retried (OpenFaaS Pro names). */
export const RetryConfigSchema = z
  .strictObject({
    /** Total attempts including the first (`max_retry_attempts`), ≥ 1. Default 10. */
    maxAttempts: z.int().min(1),
    /** Statuses worth retrying (`http_retry_codes`). Default 408,429,500,502,503,504. */
    retryStatuses: statuses,
    /** First and minimum delay, ms (`initial_retry_wait`). Default 10000 (10s). */
    initialWaitMs: z.number().min(0),
    /** Longest delay, ms (`max_retry_wait`). Default 120000 (2m). */
    maxWaitMs: z.number().min(0),
    /** Back-off jitter (`backoff`): exponential, full or equal. Default exponential. */
    mode: z.enum(BACKOFF_MODES),
  })
  .readonly();
export type RetryConfig = z.output<typeof RetryConfigSchema>;

/** What becomes a dead letter, and how old an invocation may get. */
export const DeadLetterConfigSchema = z
  .strictObject({
    /** Also dead-letter invocations that end with a non-retryable failure status (`dlq_non_retryable`). Default false. */
    nonRetryable: z.boolean(),
    /** Invocations older than this when delivered are dead-lettered unrun (`max_event_age`), ms; 0 = no limit. Default 0. */
    maxEventAgeMs: z.number().min(0),
  })
  .readonly();
export type DeadLetterConfig = z.output<typeof DeadLetterConfigSchema>;

/** Callback delivery, retried durably from JetStream. */
export const CallbackConfigSchema = z
  .strictObject({
    /** Longest one callback POST may take, ms (`callback_timeout`). Default 30000. */
    timeoutMs: ms,
    /** Total delivery attempts (`callback_max_attempts`). Default 10. */
    maxAttempts: z.int().min(1),
    /** First delay between attempts, ms (`callback_initial_wait`). Default 10000. */
    initialWaitMs: z.number().min(0),
    /** Longest delay between attempts, ms (`callback_max_wait`). Default 600000 (10m). */
    maxWaitMs: z.number().min(0),
    /**
     * Budget of the worker's direct callback attempt, ms (`callback_first_attempt_timeout`), capped
     * at `timeoutMs`. A receiver that has not answered by then gets the result from durable delivery,
     * so it holds an invocation slot no longer than this. Default 1000.
     */
    firstAttemptTimeoutMs: ms,
    /** Receiver statuses that end the retries at once, as a dead letter (`callback_permanent_codes`). Default [404, 410]. */
    permanentStatuses: statuses,
    /** Longest a callback is retried, ms from its hand-off to durable delivery (`callback_max_age`); 0 = no limit. Default 86400000 (24h). */
    maxAgeMs: z.number().min(0),
  })
  .readonly();
export type CallbackConfig = z.output<typeof CallbackConfigSchema>;

/** Invocation records and cancellations kept in JetStream KV buckets. */
export const RecordsConfigSchema = z
  .strictObject({
    /**
     * How long kept results are kept, ms (`records_ttl`); records, cancellation markers and large
     * bodies are kept this plus `maxDelayMs` (scheduledBucketOptions in src/queue/topology.ts). Default 7 days.
     */
    ttlMs: ms,
    /**
     * Largest function result stored for `GET /async-function/<call-id>/result`, bytes
     * (`result_max_size`); bigger results are not stored and the record says so. Default 262144 (256 KiB).
     */
    resultMaxBytes: z.int().min(0),
    /**
     * How long an `Idempotency-Key` maps to its first call id, ms (`idempotency_window`); also the
     * streams' JetStream duplicate window. Default 3600000 (1h).
     */
    idempotencyWindowMs: ms,
    /** Longest delay a caller may ask for with X-Delay-Seconds or X-Not-Before, ms (`max_delay`). Default 30 days. */
    maxDelayMs: ms,
  })
  .readonly();
export type RecordsConfig = z.output<typeof RecordsConfigSchema>;

/** Who may call the gateway, which callback targets are allowed, and how callbacks are signed. */
export const SecurityConfigSchema = z
  .strictObject({
    /**
     * Directory of secret files, as in OpenFaaS (`secret_mount_path`): basic-auth-user,
     * basic-auth-password, invoke-tokens, callback-signing-secret and progress-signing-key. Default "/var/openfaas/secrets".
     */
    secretMountPath: name,
    /** Basic auth on /system/* and the status and cancel routes (`basic_auth`). Default false. */
    basicAuth: z.boolean(),
    /**
     * Auth on the invocation routes /function/ and /async-function/ (`invoke_auth`): "none",
     * "basic" (the basic-auth-user/password pair) or "bearer" (tokens, one per line, in invoke-tokens).
     * Default "none", as OpenFaaS.
     */
    invokeAuth: z.enum(INVOKE_AUTH_MODES),
    /**
     * Callback targets allowed although they resolve to loopback, private, link-local or other
     * special addresses (`callback_allow`): host names ("hooks.internal", "*.svc.cluster.local"),
     * IP addresses and CIDRs ("10.0.0.0/8"), comma-separated. Default [] (public addresses only).
     */
    callbackAllow: z.array(name).readonly(),
    /**
     * Sign callbacks per Standard Webhooks (`callback_signing`) with the `whsec_` secrets in
     * callback-signing-secret, one per line (several during a key rotation). Default false.
     */
    signCallbacks: z.boolean(),
    /** Most headers one request may carry (`max_header_count`). Default 100. */
    maxHeaderCount: z.int().min(1),
    /** Largest total size of one request's headers, bytes (`max_header_size`). Default 16384 (16 KiB). */
    maxHeaderBytes: z.int().min(1),
  })
  .readonly();
export type SecurityConfig = z.output<typeof SecurityConfigSchema>;

/** All of asyncfn's configuration. Each module is handed only the slice it uses. */
export const ConfigSchema = z
  .strictObject({
    nats: NatsConfigSchema,
    queue: QueueConfigSchema,
    worker: WorkerConfigSchema,
    gateway: GatewayConfigSchema,
    functions: FunctionsConfigSchema,
    log: LogConfigSchema,
    runtime: RuntimeConfigSchema,
    retry: RetryConfigSchema,
    deadLetters: DeadLetterConfigSchema,
    callback: CallbackConfigSchema,
    records: RecordsConfigSchema,
    security: SecurityConfigSchema,
    /** The standard `OTEL_*` variables, read for the commands that trace (LoadOptions.tracing). Default undefined: tracing off. */
    tracing: TracingSettingsSchema.optional(),
  })
  .readonly()
  .refine((c) => c.queue.maxAckPending >= c.worker.maxInflight, {
    path: ['queue', 'maxAckPending'],
    error: 'must be ≥ worker.maxInflight',
  });
export type Config = z.output<typeof ConfigSchema>;

/** Config with every field, at any depth, optional: the overrides testConfig takes. */
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };
