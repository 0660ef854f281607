import { isIPv6 } from 'node:net';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { redactUrl } from './nats-url.js';
import { OPENFAAS_ALIASES, OPENFAAS_UNSUPPORTED } from './openfaas-names.js';
import { type Config, ConfigSchema, type DeepPartial } from './schema.js';
import { tracingSettingsFrom, type TracingSettings } from './tracing.js';
import { nearestKnownName } from './variable-warnings.js';
import { DEFAULT_CONSOLE_DIR } from './console-dir.js';
import { deepFreeze, isPlainObject } from './deep-freeze.js';
import { ACK_PENDING_HEADROOM, VARIABLE_NAMES, type Variables, VariablesSchema } from './variables.js';

/** As in the OpenFaaS queue-worker; not configurable yet, so they are not variables. */
const QUEUE_NAMES = { stream: 'faas-request', subject: 'faas-request', durable: 'faas-workers' } as const;

/** What a command adds to the environment and the file (src/cli passes it; see loadConfig). */
export interface LoadOptions {
  /**
   * Values, as text, a command uses for variables neither the environment nor the file sets,
   * e.g. `asyncfn up` listens on 127.0.0.1 where a deployed gateway listens on 0.0.0.0.
   */
  readonly defaults?: Readonly<Record<string, string>>;
  /** A command-line flag that sets variables and wins over everything else, e.g. `--host`. */
  readonly flags?: ReadonlyArray<{ readonly flag: string; readonly value: string; readonly variables: readonly string[] }>;
  /**
   * Whether the process's stdout is a terminal (src/cli passes `process.stdout.isTTY`). Unless
   * `log_format` is set, a terminal gets console lines and anything else (a pipe, a file, a
   * container's log driver) JSON lines; only a terminal gets colours. Default false.
   */
  readonly stdoutIsTty?: boolean;
  /**
   * Given by a command that traces (gateway, worker, up): the standard `OTEL_*` variables of
   * `env` are read into `Config.tracing` (tracing.ts), with `defaultServiceName` as the
   * `service.name` unless they set one. Without it they are not read and tracing is off, so an
   * operator command (dlq, status, queues) never trips over them.
   */
  readonly tracing?: { readonly defaultServiceName: string };
}

/**
 * Builds the one validated, deeply frozen Config from OpenFaaS-style variables.
 *
 * `env` is the environment (the CLI passes process.env; nothing else in asyncfn reads it) and
 * `fileText` the optional YAML config file: a flat mapping of the same variable names. A variable
 * set in both takes the environment's value; empty values count as unset. The OpenFaaS Pro
 * queue-worker's names (openfaas-names.ts) are read as aliases of asyncfn's, in both places.
 * `opts` adds a command's own defaults (below the file) and flags (above the environment).
 *
 * @throws ConfigError listing every problem at once, each naming the variable and its value,
 *   because OpenFaaS falling back silently on a bad value is what we do not copy. An alias and
 *   its asyncfn name set to different values in the same place are such a problem.
 */
export function loadConfig(env: Record<string, string | undefined>, fileText?: string, opts: LoadOptions = {}): Readonly<Config> {
  const problems: string[] = [];
  const file = fileText === undefined ? { values: {}, setAs: {} } : readConfigFile(fileText, problems);
  const fromEnv = readEnv(env, problems);
  const flags: Source = { values: {}, setAs: {} };
  for (const { flag, value, variables } of opts.flags ?? []) {
    for (const name of variables) {
      flags.values[name] = value;
      flags.setAs[name] = flag;
    }
  }
  const values = { ...opts.defaults, ...file.values, ...fromEnv.values, ...flags.values };
  // The name or flag the operator used for a variable, from the place whose value won.
  const setAs = { ...file.setAs, ...fromEnv.setAs, ...flags.setAs };
  for (const name of Object.keys(setAs)) {
    const winner = [flags, fromEnv, file].find((source) => Object.hasOwn(source.values, name));
    if (winner?.setAs[name] === undefined) delete setAs[name];
  }
  const parsed = VariablesSchema.safeParse(values);
  if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => describeIssue(issue, values, setAs)));
  const tracing = opts.tracing === undefined ? undefined : readTracing(env, opts.tracing.defaultServiceName, problems);
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const config = toConfig(parsed.data, opts.stdoutIsTty ?? false);
  return finish(tracing === undefined ? config : { ...config, tracing });
}

/**
 * The defaults with `overrides` merged in, validated and frozen: what unit tests pass to the
 * modules they test. Like loadConfig, the default queue.maxAckPending follows worker.maxInflight.
 *
 * @throws ConfigError if the overrides make an invalid Config (e.g. maxInflight 0).
 */
export function testConfig(overrides: DeepPartial<Config> = {}): Readonly<Config> {
  const defaults = VariablesSchema.parse({});
  const base = toConfig({ ...defaults, max_inflight: overrides.worker?.maxInflight ?? defaults.max_inflight }, false);
  return finish(merge(base, overrides));
}

/** The `OTEL_*` settings (undefined: tracing off); their problems join the others, worded as tracing.ts words them. */
function readTracing(env: Record<string, string | undefined>, defaultServiceName: string, problems: string[]): TracingSettings | undefined {
  try {
    return tracingSettingsFrom(env, defaultServiceName);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    return undefined;
  }
}

/** Variable values read from one place, and the alias or flag each was set as, when not its own name. */
interface Source {
  readonly values: Record<string, string>;
  readonly setAs: Record<string, string>;
}

function readEnv(env: Record<string, string | undefined>, problems: string[]): Source {
  const values: Record<string, string> = {};
  for (const name of [...VARIABLE_NAMES, ...Object.keys(OPENFAAS_ALIASES)]) {
    const value = env[name]?.trim();
    if (value) values[name] = value;
  }
  return resolveAliases(values, 'in the environment', problems);
}

/**
 * Renames OpenFaaS Pro aliases to asyncfn's names. Within one place (environment or file), an
 * alias and its name with different values is an error: which one was meant cannot be known.
 */
function resolveAliases(values: Record<string, string>, where: string, problems: string[]): Source {
  const resolved = { ...values };
  const setAs: Record<string, string> = {};
  for (const [alias, name] of Object.entries(OPENFAAS_ALIASES)) {
    const value = resolved[alias];
    if (value === undefined) continue;
    delete resolved[alias];
    const own = resolved[name];
    if (own !== undefined && own !== value) {
      problems.push(
        `${alias}: ${JSON.stringify(value)} and ${name}: ${JSON.stringify(own)} are both set ${where}; ` +
          `${alias} is the OpenFaaS Pro name of ${name}, set only one of them`,
      );
      continue;
    }
    resolved[name] = value;
    if (own === undefined) setAs[name] = alias;
  }
  return { values: resolved, setAs };
}

/**
 * Reads the config file. The YAML "failsafe" schema keeps every scalar as the text written, so
 * `max_inflight: 010` or `write_debug: yes` go through the same parsers as the environment does.
 */
function readConfigFile(text: string, problems: string[]): Source {
  const doc = parseDocument(text, { schema: 'failsafe' });
  if (doc.errors.length > 0) {
    // The first line of a yaml error names the problem and position; the rest is a code excerpt.
    for (const error of doc.errors) problems.push(`config file: invalid YAML: ${error.message.split('\n')[0]!.replace(/:$/, '')}`);
    return { values: {}, setAs: {} };
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return { values: {}, setAs: {} }; // empty, or only comments
  if (typeof data !== 'object' || Array.isArray(data)) {
    problems.push('config file: expected a mapping of variable names to values (e.g. "max_inflight: 10")');
    return { values: {}, setAs: {} };
  }
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(data)) {
    if (!VARIABLE_NAMES.includes(name) && !Object.hasOwn(OPENFAAS_ALIASES, name)) {
      const near = nearestKnownName(name);
      const unsupported = Object.hasOwn(OPENFAAS_UNSUPPORTED, name) ? `: an OpenFaaS setting asyncfn does not read, ${OPENFAAS_UNSUPPORTED[name]!.hint}` : '';
      problems.push(`config file: unknown key ${JSON.stringify(name)}${near === undefined ? '' : ` (did you mean ${near}?)`}${unsupported}`);
    } else if (typeof value !== 'string') {
      problems.push(`${name}: expected a single value in the config file, got a ${Array.isArray(value) ? 'list' : 'mapping'}`);
    } else if (value.trim() !== '') {
      values[name] = value.trim();
    }
  }
  return resolveAliases(values, 'in the config file', problems);
}

/** One line per problem, naming the variable (as the operator spelt it) and the value it had. */
function describeIssue(issue: z.core.$ZodIssue, values: Record<string, string>, setAs: Record<string, string>): string {
  const name = String(issue.path[0] ?? '(config)');
  const label = setAs[name] === undefined ? name : `${setAs[name]} (${name})`;
  // NATS_URL may carry a password or token (nats://user:pass@host).
  const value = name === 'NATS_URL' && values[name] !== undefined ? redactUrl(values[name]) : values[name];
  return value === undefined ? `${label}: ${issue.message}` : `${label}: ${JSON.stringify(value)} ${issue.message}`;
}

/** IPv6 literals need brackets inside a URL. */
function hostForUrl(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function toConfig(v: Variables, stdoutIsTty: boolean): Config {
  const natsFromAddress = v.faas_nats_address === undefined ? undefined : `nats://${hostForUrl(v.faas_nats_address)}:${v.faas_nats_port}`;
  return {
    nats: {
      url: v.NATS_URL ?? natsFromAddress,
      auth: {
        credsFile: v.nats_creds_file,
        nkeySeedFile: v.nats_nkey_seed_file,
        tokenFile: v.nats_token_file,
        user: v.nats_user,
        passwordFile: v.nats_password_file,
      },
      tls: { caFile: v.nats_tls_ca_file, certFile: v.nats_tls_cert_file, keyFile: v.nats_tls_key_file },
    },
    queue: {
      ...QUEUE_NAMES,
      replicas: v.stream_replication,
      storage: v.stream_storage,
      maxAckPending: v.max_ack_pending ?? v.max_inflight + ACK_PENDING_HEADROOM,
    },
    worker: {
      maxInflight: v.max_inflight,
      ackWaitMs: v.ack_wait,
      upstreamTimeoutMs: v.upstream_timeout,
      shutdownGraceMs: v.shutdown_grace,
      queues: (v.queues ?? []).map((q) => ({
        name: q.name,
        maxInflight: q.maxInflight ?? v.max_inflight,
        upstreamTimeoutMs: q.upstreamTimeoutMs ?? v.upstream_timeout,
      })),
      port: v.worker_port,
      host: v.worker_host,
      adaptiveConcurrency: v.adaptive_concurrency,
      throttleMaxDeliveries: v.throttle_max_deliveries,
      gatewayPublicUrl: v.gateway_public_url,
    },
    gateway: {
      port: v.gateway_port,
      host: v.gateway_host,
      readTimeoutMs: v.read_timeout,
      writeTimeoutMs: v.write_timeout,
      upstreamTimeoutMs: v.upstream_timeout,
      maxBodyBytes: v.max_body_size,
      maxLargeBodyBytes: v.max_large_body_size,
      publishTimeoutMs: v.publish_timeout,
      maxBatchItems: v.max_batch_items,
      maxBatchBytes: v.max_batch_bytes,
      processes: v.gateway_processes,
      frontDoor: v.front_door,
      fairScheduling: v.fair_scheduling,
      console: { enabled: v.console, dir: v.console_dir ?? DEFAULT_CONSOLE_DIR, traceUrlTemplate: v.console_trace_url },
    },
    functions: {
      mode: v.functions_file !== undefined ? 'file' : v.gateway_invoke ? 'gateway' : 'template',
      file: v.functions_file,
      urlTemplate: v.function_url_template,
      defaultNamespace: v.function_namespace,
      // variables.ts has already stripped the trailing slash of a full URL.
      gatewayUrl: /^https?:\/\//i.test(v.faas_gateway_address) ? v.faas_gateway_address : `http://${hostForUrl(v.faas_gateway_address)}:${v.faas_gateway_port}`,
    },
    log: logConfig(v, stdoutIsTty),
    runtime: { heapGrowingPercent: v.heap_growing_percent, metricsFunctionNames: v.metrics_function_names },
    retry: {
      maxAttempts: v.max_retry_attempts,
      retryStatuses: v.http_retry_codes,
      initialWaitMs: v.initial_retry_wait,
      maxWaitMs: v.max_retry_wait,
      mode: v.backoff,
    },
    deadLetters: { nonRetryable: v.dlq_non_retryable, maxEventAgeMs: v.max_event_age },
    callback: {
      timeoutMs: v.callback_timeout,
      maxAttempts: v.callback_max_attempts,
      initialWaitMs: v.callback_initial_wait,
      maxWaitMs: v.callback_max_wait,
      firstAttemptTimeoutMs: v.callback_first_attempt_timeout,
      permanentStatuses: v.callback_permanent_codes,
      maxAgeMs: v.callback_max_age,
    },
    records: {
      ttlMs: v.records_ttl,
      resultMaxBytes: v.result_max_size,
      idempotencyWindowMs: v.idempotency_window,
      maxDelayMs: v.max_delay,
    },
    security: {
      secretMountPath: v.secret_mount_path,
      basicAuth: v.basic_auth,
      invokeAuth: v.invoke_auth,
      callbackAllow: v.callback_allow,
      signCallbacks: v.callback_signing,
      maxHeaderCount: v.max_header_count,
      maxHeaderBytes: v.max_header_size,
    },
  };
}

/** Unless `log_format` says otherwise: console lines for people at a terminal, JSON lines for collectors. */
function logConfig(v: Variables, stdoutIsTty: boolean): Config['log'] {
  const format = v.log_format ?? (stdoutIsTty ? 'console' : 'json');
  return { level: v.log_level, format, colour: format === 'console' && stdoutIsTty, writeDebug: v.write_debug };
}

/** Last check and freeze. A failure on a loaded config is a mapping bug; on testConfig, a bad override. */
function finish(candidate: unknown): Readonly<Config> {
  const checked = ConfigSchema.safeParse(candidate);
  if (!checked.success) throw new ConfigError(checked.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`));
  return deepFreeze(checked.data);
}

/** Overrides win, nested objects merge; undefined in overrides means "keep the default". */
function merge(base: object, overrides: object): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const current = merged[key];
    merged[key] = isPlainObject(current) && isPlainObject(value) ? merge(current, value) : value;
  }
  return merged;
}
