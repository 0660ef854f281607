import { z } from 'zod';

/**
 * The shape of asyncfn's configuration, and a zod schema that checks a finished Config.
 * Durations are in milliseconds and sizes in bytes, whatever syntax the operator used; each
 * field names the OpenFaaS variable it comes from (see load.ts and variables.ts).
 */

export const STORAGE_TYPES = ['file', 'memory'] as const;
export const FUNCTION_MODES = ['file', 'template', 'gateway'] as const;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_FORMATS = ['json', 'console'] as const;
export const BACKOFF_MODES = ['exponential', 'full', 'equal'] as const;
export const INVOKE_AUTH_MODES = ['none', 'basic', 'bearer'] as const;
/** A queue name is both a JetStream stream name and a subject token. */
export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Where the NATS servers are. */
export interface NatsConfig {
  /**
   * One or more comma-separated server URLs (cluster seeds), each nats://, tls://, ws:// or wss://.
   * From `NATS_URL`, else `nats://${faas_nats_address}:${faas_nats_port}` (port default 4222).
   * Default: undefined, meaning "not configured": `asyncfn up` then starts a local nats-server.
   */
  readonly url?: string;
  /**
   * How asyncfn proves who it is to NATS. Every secret is a file path, never a value, so that
   * no secret sits in the environment, the config file or a log line. All default undefined.
   */
  readonly auth: NatsAuthConfig;
  /** TLS towards NATS: a CA to trust and an optional client certificate (mutual TLS). */
  readonly tls: NatsTlsConfig;
}

/** NATS credentials; at most one of creds, nkey seed, token or user/password is used. */
export interface NatsAuthConfig {
  /** A decentralized-auth `.creds` file (JWT + seed) (`nats_creds_file`). */
  readonly credsFile?: string;
  /** A file holding an NKEY user seed, `SU...` (`nats_nkey_seed_file`). */
  readonly nkeySeedFile?: string;
  /** A file holding an authorization token (`nats_token_file`). */
  readonly tokenFile?: string;
  /** User name for user/password auth (`nats_user`); not a secret. */
  readonly user?: string;
  /** A file holding the password of `user` (`nats_password_file`). */
  readonly passwordFile?: string;
}

/** Files for TLS towards NATS; setting any of them turns TLS on. */
export interface NatsTlsConfig {
  /** PEM CA bundle that signs the servers' certificates (`nats_tls_ca_file`). */
  readonly caFile?: string;
  /** PEM client certificate for mutual TLS (`nats_tls_cert_file`); needs keyFile. */
  readonly certFile?: string;
  /** PEM private key of certFile (`nats_tls_key_file`). */
  readonly keyFile?: string;
}

/** The JetStream stream and consumer that hold queued requests; names match the OpenFaaS queue-worker. */
export interface QueueConfig {
  /** Stream name. Fixed: "faas-request". */
  readonly stream: string;
  /** Subject the gateway publishes to. Fixed: "faas-request". */
  readonly subject: string;
  /** Durable consumer shared by all workers. Fixed: "faas-workers". */
  readonly durable: string;
  /** Stream replicas, 1–5 (`stream_replication`). Default 1. */
  readonly replicas: number;
  /** Stream storage (`stream_storage`). Default "file", so queued requests survive a restart. */
  readonly storage: (typeof STORAGE_TYPES)[number];
  /**
   * Most messages delivered but not yet acked, across all workers (`max_ack_pending`), ≥ max_inflight.
   * Default maxInflight + 10000: room for retries waiting in JetStream.
   */
  readonly maxAckPending: number;
}

/** The queue worker: pulls requests, invokes functions, posts callbacks. */
export interface WorkerConfig {
  /** Requests one worker runs at once (`max_inflight`), ≥ 1. Default 1, as in OpenFaaS. */
  readonly maxInflight: number;
  /** Milliseconds JetStream waits for an ack before redelivering (`ack_wait`), ≥ 1000. Default 60000 (60s). */
  readonly ackWaitMs: number;
  /** Milliseconds allowed for one function call (`upstream_timeout`), > 0. Default 60000 (60s). */
  readonly upstreamTimeoutMs: number;
  /** Milliseconds in-flight requests get to finish on shutdown (`shutdown_grace`), ≥ 0. Default 30000 (30s). */
  readonly shutdownGraceMs: number;
  /**
   * Queues this worker serves (`queues`: name[:max_inflight[:upstream_timeout]],...), limits
   * defaulting to max_inflight and upstream_timeout. Default [] = the default queue only.
   */
  readonly queues: readonly QueueServed[];
  /** Port of the health and metrics server (`worker_port`). Default 8081. */
  readonly port: number;
  /** Address the health and metrics server listens on (`worker_host`). Default "0.0.0.0". */
  readonly host: string;
}

/** The HTTP gateway that accepts /async-function/ requests. */
export interface GatewayConfig {
  /** Listening port (`gateway_port`). Default 8080, as the OpenFaaS gateway. */
  readonly port: number;
  /** Listening address (`gateway_host`). Default "0.0.0.0". */
  readonly host: string;
  /** Milliseconds to receive a whole request (`read_timeout`), > 0. Default 60000 (60s). */
  readonly readTimeoutMs: number;
  /** Milliseconds to send a whole response (`write_timeout`), > 0. Default 60000 (60s). */
  readonly writeTimeoutMs: number;
  /** Milliseconds allowed for a synchronous function call (`upstream_timeout`), > 0. Default 60000 (60s). */
  readonly upstreamTimeoutMs: number;
  /**
   * Largest request body in bytes (`max_body_size`), ≥ 1. Default 1024000 (1000 KiB): NATS's
   * default max_payload is 1 MiB including headers, so this leaves 24 KiB for the headers.
   */
  readonly maxBodyBytes: number;
  /**
   * Milliseconds the gateway waits for JetStream, all round trips of one request together (the
   * idempotency claim, the record, the PubAck; a status read or a cancellation), before answering
   * 503 with Retry-After (`publish_timeout`), > 0. Default 1000 (1s).
   */
  readonly publishTimeoutMs: number;
  /**
   * Gateway processes sharing the listening port (`gateway_processes`, node:cluster), 1–64.
   * Default 1: one process, no cluster primary. More use more cores: each process has its own
   * NATS connection and serves any route; a primary process forks and supervises them.
   */
  readonly processes: number;
}

/** How a function name becomes a URL. */
export interface FunctionsConfig {
  /**
   * "file" if `functions_file` is set, else "gateway" if `gateway_invoke` is true (call through
   * the OpenFaaS gateway, as the queue-worker does), else "template". Default "template".
   */
  readonly mode: (typeof FUNCTION_MODES)[number];
  /** Path of the functions file (`functions_file`). Default undefined. */
  readonly file?: string;
  /**
   * URL of a function in "template" mode (`function_url_template`); must contain {name} and may
   * contain {namespace}. Default "http://{name}.{namespace}.svc.cluster.local:8080".
   */
  readonly urlTemplate: string;
  /** Namespace of names given without one (`function_namespace`). Default "openfaas-fn". */
  readonly defaultNamespace: string;
  /**
   * Base URL of the OpenFaaS gateway, no trailing slash: `http://${faas_gateway_address}:${faas_gateway_port}`,
   * or faas_gateway_address itself if it is already an http(s) URL. Default "http://gateway:8080".
   */
  readonly gatewayUrl: string;
}

/** Logging. */
export interface LogConfig {
  /** Lowest level written (`log_level`). Default "info". */
  readonly level: (typeof LOG_LEVELS)[number];
  /**
   * "json" lines for collectors, or "console" lines for people (`log_format`, OpenFaaS's
   * `logs.format`). Default: "console" when stdout is a terminal, "json" otherwise.
   */
  readonly format: (typeof LOG_FORMATS)[number];
  /**
   * ANSI colours in console lines: true only when stdout is a terminal, so a console log piped
   * to a file or a pager holds no escape codes. Not a variable. Default false.
   */
  readonly colour: boolean;
  /** Log request and response bodies, as OpenFaaS `write_debug` does. Default false. */
  readonly writeDebug: boolean;
}

/** One named queue a worker serves: its own stream, consumer and limits. */
export interface QueueServed {
  /** Queue name = stream name = subject; functions choose it with `com.openfaas.queue`. */
  readonly name: string;
  /** Invocations of this queue running at once on one worker. Default `max_inflight`. */
  readonly maxInflight: number;
  /** Longest function call for this queue, ms. Default `upstream_timeout`. */
  readonly upstreamTimeoutMs: number;
}

/** When and how failed invocations are retried (OpenFaaS Pro names). */
export interface RetryConfig {
  /** Total attempts including the first (`max_retry_attempts`), ≥ 1. Default 10. */
  readonly maxAttempts: number;
  /** Statuses worth retrying (`http_retry_codes`). Default 408,429,500,502,503,504. */
  readonly retryStatuses: readonly number[];
  /** First and minimum delay, ms (`initial_retry_wait`). Default 10000 (10s). */
  readonly initialWaitMs: number;
  /** Longest delay, ms (`max_retry_wait`). Default 120000 (2m). */
  readonly maxWaitMs: number;
  /** Back-off jitter (`backoff`): exponential, full or equal. Default exponential. */
  readonly mode: (typeof BACKOFF_MODES)[number];
}

/** What becomes a dead letter, and how old an invocation may get. */
export interface DeadLetterConfig {
  /** Also dead-letter invocations that end with a non-retryable failure status (`dlq_non_retryable`). Default false. */
  readonly nonRetryable: boolean;
  /** Invocations older than this when delivered are dead-lettered unrun (`max_event_age`), ms; 0 = no limit. Default 0. */
  readonly maxEventAgeMs: number;
}

/** Callback delivery, retried durably from JetStream. */
export interface CallbackConfig {
  /** Longest one callback POST may take, ms (`callback_timeout`). Default 30000. */
  readonly timeoutMs: number;
  /** Total delivery attempts (`callback_max_attempts`). Default 10. */
  readonly maxAttempts: number;
  /** First delay between attempts, ms (`callback_initial_wait`). Default 10000. */
  readonly initialWaitMs: number;
  /** Longest delay between attempts, ms (`callback_max_wait`). Default 600000 (10m). */
  readonly maxWaitMs: number;
  /**
   * Budget of the worker's direct callback attempt, ms (`callback_first_attempt_timeout`), capped
   * at `timeoutMs`. A receiver that has not answered by then gets the result from durable delivery,
   * so it holds an invocation slot no longer than this. Default 1000.
   */
  readonly firstAttemptTimeoutMs: number;
  /** Receiver statuses that end the retries at once, as a dead letter (`callback_permanent_codes`). Default [404, 410]. */
  readonly permanentStatuses: readonly number[];
  /** Longest a callback is retried, ms from its hand-off to durable delivery (`callback_max_age`); 0 = no limit. Default 86400000 (24h). */
  readonly maxAgeMs: number;
}

/** Who may call the gateway, which callback targets are allowed, and how callbacks are signed. */
export interface SecurityConfig {
  /**
   * Directory of secret files, as in OpenFaaS (`secret_mount_path`): basic-auth-user,
   * basic-auth-password, invoke-tokens and callback-signing-secret. Default "/var/openfaas/secrets".
   */
  readonly secretMountPath: string;
  /** Basic auth on /system/* and the status and cancel routes (`basic_auth`). Default false. */
  readonly basicAuth: boolean;
  /**
   * Auth on the invocation routes /function/ and /async-function/ (`invoke_auth`): "none",
   * "basic" (the basic-auth-user/password pair) or "bearer" (tokens, one per line, in invoke-tokens).
   * Default "none", as OpenFaaS.
   */
  readonly invokeAuth: (typeof INVOKE_AUTH_MODES)[number];
  /**
   * Callback targets allowed although they resolve to loopback, private, link-local or other
   * special addresses (`callback_allow`): host names ("hooks.internal", "*.svc.cluster.local"),
   * IP addresses and CIDRs ("10.0.0.0/8"), comma-separated. Default [] (public addresses only).
   */
  readonly callbackAllow: readonly string[];
  /**
   * Sign callbacks per Standard Webhooks (`callback_signing`) with the `whsec_` secrets in
   * callback-signing-secret, one per line (several during a key rotation). Default false.
   */
  readonly signCallbacks: boolean;
  /** Most headers one request may carry (`max_header_count`). Default 100. */
  readonly maxHeaderCount: number;
  /** Largest total size of one request's headers, bytes (`max_header_size`). Default 16384 (16 KiB). */
  readonly maxHeaderBytes: number;
}

/** Invocation records and cancellations kept in JetStream KV buckets. */
export interface RecordsConfig {
  /** How long records and cancellation markers are kept, ms (`records_ttl`). Default 7 days. */
  readonly ttlMs: number;
  /**
   * Largest function result stored for `GET /async-function/<call-id>/result`, bytes
   * (`result_max_size`); bigger results are not stored and the record says so. Default 262144 (256 KiB).
   */
  readonly resultMaxBytes: number;
  /**
   * How long an `Idempotency-Key` maps to its first call id, ms (`idempotency_window`); also the
   * streams' JetStream duplicate window. Default 3600000 (1h).
   */
  readonly idempotencyWindowMs: number;
  /** Longest delay a caller may ask for with X-Delay-Seconds or X-Not-Before, ms (`max_delay`). Default 30 days. */
  readonly maxDelayMs: number;
}

/** All of asyncfn's configuration. Each module is handed only the slice it uses. */
export interface Config {
  readonly nats: NatsConfig;
  readonly queue: QueueConfig;
  readonly worker: WorkerConfig;
  readonly gateway: GatewayConfig;
  readonly functions: FunctionsConfig;
  readonly log: LogConfig;
  readonly retry: RetryConfig;
  readonly deadLetters: DeadLetterConfig;
  readonly callback: CallbackConfig;
  readonly records: RecordsConfig;
  readonly security: SecurityConfig;
}

/** Config with every field, at any depth, optional: the overrides testConfig takes. */
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

const port = z.int().min(0).max(65_535);
const name = z.string().min(1);
const ms = z.number().positive();

/**
 * Checks a finished Config. loadConfig has already reported bad variables by name, so a failure
 * here on a loaded config is a bug in the mapping; for testConfig it catches impossible overrides.
 * Strict objects catch misspelt override keys that a cast let through.
 */
export const ConfigSchema = z
  .strictObject({
    nats: z.strictObject({
      url: name.optional(),
      auth: z.strictObject({
        credsFile: name.optional(),
        nkeySeedFile: name.optional(),
        tokenFile: name.optional(),
        user: name.optional(),
        passwordFile: name.optional(),
      }),
      tls: z.strictObject({ caFile: name.optional(), certFile: name.optional(), keyFile: name.optional() }),
    }),
    queue: z.strictObject({
      stream: name,
      subject: name,
      durable: name,
      replicas: z.int().min(1).max(5),
      storage: z.enum(STORAGE_TYPES),
      maxAckPending: z.int().min(1),
    }),
    worker: z.strictObject({
      maxInflight: z.int().min(1),
      ackWaitMs: z.number().min(1_000),
      upstreamTimeoutMs: ms,
      shutdownGraceMs: z.number().min(0),
      queues: z.array(z.strictObject({ name: z.string().regex(QUEUE_NAME), maxInflight: z.int().min(1), upstreamTimeoutMs: ms })).readonly(),
      port,
      host: name,
    }),
    gateway: z.strictObject({
      port,
      host: name,
      readTimeoutMs: ms,
      writeTimeoutMs: ms,
      upstreamTimeoutMs: ms,
      maxBodyBytes: z.int().min(1),
      publishTimeoutMs: ms,
      processes: z.int().min(1).max(64),
    }),
    functions: z.strictObject({
      mode: z.enum(FUNCTION_MODES),
      file: name.optional(),
      urlTemplate: z.string().includes('{name}'),
      defaultNamespace: name,
      gatewayUrl: z.url({ protocol: /^https?$/ }),
    }),
    log: z.strictObject({ level: z.enum(LOG_LEVELS), format: z.enum(LOG_FORMATS), colour: z.boolean(), writeDebug: z.boolean() }),
    retry: z.strictObject({
      maxAttempts: z.int().min(1),
      retryStatuses: z.array(z.int().min(100).max(599)).readonly(),
      initialWaitMs: z.number().min(0),
      maxWaitMs: z.number().min(0),
      mode: z.enum(BACKOFF_MODES),
    }),
    deadLetters: z.strictObject({ nonRetryable: z.boolean(), maxEventAgeMs: z.number().min(0) }),
    callback: z.strictObject({
      timeoutMs: ms,
      maxAttempts: z.int().min(1),
      initialWaitMs: z.number().min(0),
      maxWaitMs: z.number().min(0),
      firstAttemptTimeoutMs: ms,
      permanentStatuses: z.array(z.int().min(100).max(599)).readonly(),
      maxAgeMs: z.number().min(0),
    }),
    records: z.strictObject({ ttlMs: ms, resultMaxBytes: z.int().min(0), idempotencyWindowMs: ms, maxDelayMs: ms }),
    security: z.strictObject({
      secretMountPath: name,
      basicAuth: z.boolean(),
      invokeAuth: z.enum(INVOKE_AUTH_MODES),
      callbackAllow: z.array(name).readonly(),
      signCallbacks: z.boolean(),
      maxHeaderCount: z.int().min(1),
      maxHeaderBytes: z.int().min(1),
    }),
  })
  .refine((c) => c.queue.maxAckPending >= c.worker.maxInflight, {
    path: ['queue', 'maxAckPending'],
    error: 'must be ≥ worker.maxInflight',
  }) satisfies z.ZodType<Config>;

// `satisfies` above checks schema → interface; this checks interface → schema, so neither can drift.
type Assert<T extends true> = T;
type _ConfigMatchesSchema = Assert<Config extends z.output<typeof ConfigSchema> ? true : false>;
