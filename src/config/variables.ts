import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDurationMs } from './duration.js';
import { parseRetryStatuses } from '../../actors/retry.policy.js';
import { redactUrl, splitServerList } from './nats-url.js';
import { BACKOFF_MODES, INVOKE_AUTH_MODES, LOG_FORMATS, LOG_LEVELS, QUEUE_NAME, STORAGE_TYPES } from './schema.js';
import { parseSizeBytes } from './size.js';

/**
 * The OpenFaaS variables asyncfn reads, keyed by their exact names, each parsed from text to a
 * typed value with its range and default. Keying the schema by variable name makes every zod
 * issue path a variable name, so problems name what the operator typed, not a path in Config.
 *
 * Every error message continues the sentence `${name}: "${value}" …`, which load.ts puts in front.
 */

/** Reports the value being parsed as wrong; zod then skips the rest of this variable's checks. */
function reject(ctx: z.core.$RefinementCtx<string>, message: string): never {
  ctx.issues.push({ code: 'custom', message, input: ctx.value });
  return z.NEVER;
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
  const outOfRange = `is out of range (expected ${expected})`;
  return z
    .string()
    .transform((text, ctx) => (/^[+-]?\d+$/.test(text) ? Number(text) : reject(ctx, `is not an integer (expected ${expected})`)))
    .pipe(z.number().min(min, { error: outOfRange }).max(max, { error: outOfRange }));
}

const port = integer(1, 65_535);
/** A port to listen on: 0 lets the OS pick a free one (tests, several local instances). */
const listenPort = integer(0, 65_535);

/** `bounds` checks the parsed milliseconds, e.g. z.number().min(1000, …) for ack_wait. */
function duration(bounds: z.ZodNumber = z.number()) {
  return z
    .string()
    .transform((text, ctx) => {
      const ms = parseDurationMs(text);
      if (ms !== undefined) return ms;
      // parseDurationMs cannot say why; a sign is the one reason worth its own message.
      if (text.startsWith('-')) return reject(ctx, 'is negative (expected a duration ≥ 0)');
      return reject(ctx, 'is not a duration (expected e.g. 60s, 1m, 500ms or bare seconds)');
    })
    .pipe(bounds);
}
const positiveDuration = duration(z.number().positive({ error: 'is too short (expected more than 0s)' }));

const bytes = z
  .string()
  .transform((text, ctx) => parseSizeBytes(text) ?? reject(ctx, 'is not a size (expected e.g. 1048576, 1000KiB, 1MiB or 1MB)'))
  .pipe(z.int().min(1, { error: 'is too small (expected at least 1 byte)' }));

const BOOLEANS: Readonly<Record<string, boolean>> = { true: true, yes: true, '1': true, false: false, no: false, '0': false };
const boolean = z
  .string()
  .transform((text, ctx) => BOOLEANS[text.toLowerCase()] ?? reject(ctx, 'is not a boolean (expected true, false, 1, 0, yes or no)'));

/** One of a few lower-case words; case is ignored because LOG_LEVEL=INFO is a common spelling. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z
    .string()
    .transform((text) => text.toLowerCase())
    .pipe(z.enum(values, { error: `is not one of ${values.join(', ')}` }));
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;
const host = z.string().refine((text) => isIP(text) !== 0 || HOSTNAME.test(text), { error: 'is not a host name or IP address' });

/** Kubernetes namespaces are DNS-1123 labels; anything else could never match a function. */
const namespace = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, { error: 'is not a namespace (expected a DNS-1123 label)' });

function isUrl(text: string, protocols: readonly string[]): boolean {
  return URL.canParse(text) && protocols.includes(new URL(text).protocol);
}

/** Cluster seeds are comma-separated, as nats.js and the nats CLI accept them. */
const natsUrls = z.string().transform((text, ctx) => {
  // Split as the connection splits, so a comma inside a password stays in it (src/queue/nats-url.ts).
  const urls = splitServerList(text).map((url) => url.trim());
  const bad = urls.filter((url) => !isUrl(url, ['nats:', 'tls:', 'ws:', 'wss:']));
  if (bad.length > 0) {
    const list = bad.map((url) => JSON.stringify(redactUrl(url))).join(', ');
    return reject(ctx, `has ${list}, which is not a nats://, tls://, ws:// or wss:// URL`);
  }
  return urls.join(',');
});

const urlTemplate = z.string().superRefine((text, ctx) => {
  if (!text.includes('{name}')) reject(ctx, 'does not contain {name}');
  else if (!isUrl(text.replaceAll('{name}', 'fn').replaceAll('{namespace}', 'openfaas-fn'), ['http:', 'https:'])) {
    reject(ctx, 'is not an http(s) URL once {name} and {namespace} are filled in');
  }
});

/** OpenFaaS takes a host name here, but a full base URL is handy behind TLS or a path prefix. */
const gatewayAddress = z.string().transform((text, ctx) => {
  if (/^https?:\/\//i.test(text)) {
    return isUrl(text, ['http:', 'https:']) ? text.replace(/\/+$/, '') : reject(ctx, 'is not a valid URL');
  }
  return isIP(text) !== 0 || HOSTNAME.test(text) ? text : reject(ctx, 'is not a host name, IP address or http(s) URL');
});

/** `http_retry_codes`: comma-separated HTTP statuses. */
const statusList = z.string().transform((text, ctx) => {
  const codes = parseRetryStatuses(text);
  return codes ? [...codes] : reject(ctx, 'is not a comma-separated list of HTTP statuses (e.g. 429,502)');
});


/** `callback_permanent_codes`: like `http_retry_codes`, or `none` (an empty variable means the default). */
const optionalStatusList = z.string().transform((text, ctx) => {
  if (text.toLowerCase() === 'none') return [];
  const codes = parseRetryStatuses(text);
  return codes ? [...codes] : reject(ctx, 'is not a comma-separated list of HTTP statuses (e.g. 404,410) or none');
});

/** `queues`: `name[:max_inflight[:upstream_timeout]]`, comma-separated. */
const queueList = z.string().transform((text, ctx) => {
  const queues: Array<{ name: string; maxInflight?: number; upstreamTimeoutMs?: number }> = [];
  for (const item of text.split(',').map((part) => part.trim())) {
    const [name = '', inflight, timeout] = item.split(':');
    const maxInflight = inflight === undefined || inflight === '' ? undefined : Number(inflight);
    const upstreamTimeoutMs = timeout === undefined || timeout === '' ? undefined : parseDurationMs(timeout);
    if (!QUEUE_NAME.test(name) || (maxInflight !== undefined && !(Number.isInteger(maxInflight) && maxInflight >= 1)) || (timeout && !upstreamTimeoutMs)) {
      return reject(ctx, `has "${item}", expected name[:max_inflight[:upstream_timeout]] with a name of letters, digits, - and _`);
    }
    if (queues.some((q) => q.name === name)) return reject(ctx, `names queue "${name}" twice`);
    queues.push({ name, maxInflight, upstreamTimeoutMs });
  }
  return queues;
});

/** `callback_allow`: host names (optionally `*.` + a suffix), IP addresses and CIDRs, comma-separated. */
const allowList = z.string().transform((text, ctx) => {
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  const bad = items.filter((item) => !isAllowEntry(item));
  if (bad.length > 0) {
    const list = bad.map((item) => JSON.stringify(item)).join(', ');
    return reject(ctx, `has ${list}, which is not a host name, *.suffix, IP address or CIDR`);
  }
  return items;
});

function isAllowEntry(item: string): boolean {
  const [address = '', prefix, ...rest] = item.split('/');
  if (prefix !== undefined) {
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    return rest.length === 0 && family !== 0 && /^\d{1,3}$/.test(prefix) && Number(prefix) <= max;
  }
  return isIP(address) !== 0 || HOSTNAME.test(address.replace(/^\*\./, ''));
}

/** A file path; kept as written, read (and checked) when the component starts. */
const path = z.string().min(1);

export const VariablesSchema = z
  .object({
    NATS_URL: natsUrls.optional(),
    faas_nats_address: host.optional(),
    faas_nats_port: port.default(4222),
    stream_replication: integer(1, 5).default(1),
    stream_storage: oneOf(STORAGE_TYPES).default('file'),
    max_ack_pending: integer(1).optional(),
    max_inflight: integer(1).default(1),
    ack_wait: duration(z.number().min(1_000, { error: 'is too short (expected at least 1s)' })).default(60_000),
    upstream_timeout: positiveDuration.default(60_000),
    shutdown_grace: duration().default(30_000),
    worker_port: listenPort.default(8081),
    worker_host: host.default('0.0.0.0'),
    gateway_port: listenPort.default(8080),
    gateway_host: host.default('0.0.0.0'),
    read_timeout: positiveDuration.default(60_000),
    write_timeout: positiveDuration.default(60_000),
    max_body_size: bytes.default(1_024_000),
    publish_timeout: positiveDuration.default(1_000),
    gateway_processes: integer(1, 64).default(1),
    functions_file: z.string().optional(),
    gateway_invoke: boolean.default(false),
    function_url_template: urlTemplate.default('http://{name}.{namespace}.svc.cluster.local:8080'),
    function_namespace: namespace.default('openfaas-fn'),
    faas_gateway_address: gatewayAddress.default('gateway'),
    faas_gateway_port: port.default(8080),
    log_level: oneOf(LOG_LEVELS).default('info'),
    // No default here: unset, it follows whether stdout is a terminal (load.ts, LoadOptions.stdoutIsTty).
    log_format: oneOf(LOG_FORMATS).optional(),
    write_debug: boolean.default(false),
    max_retry_attempts: integer(1).default(10),
    http_retry_codes: statusList.default([408, 429, 500, 502, 503, 504]),
    initial_retry_wait: duration().default(10_000),
    max_retry_wait: duration().default(120_000),
    backoff: oneOf(BACKOFF_MODES).default('exponential'),
    dlq_non_retryable: boolean.default(false),
    max_event_age: duration().default(0),
    callback_timeout: positiveDuration.default(30_000),
    callback_max_attempts: integer(1).default(10),
    callback_initial_wait: duration().default(10_000),
    callback_max_wait: duration().default(600_000),
    callback_first_attempt_timeout: positiveDuration.default(1_000),
    callback_permanent_codes: optionalStatusList.default([404, 410]),
    callback_max_age: duration().default(24 * 3_600_000),
    records_ttl: positiveDuration.default(7 * 24 * 3_600_000),
    result_max_size: bytes.default(262_144),
    idempotency_window: positiveDuration.default(3_600_000),
    max_delay: positiveDuration.default(30 * 24 * 3_600_000),
    queues: queueList.optional(),
    nats_creds_file: path.optional(),
    nats_nkey_seed_file: path.optional(),
    nats_token_file: path.optional(),
    nats_user: z.string().optional(),
    nats_password_file: path.optional(),
    nats_tls_ca_file: path.optional(),
    nats_tls_cert_file: path.optional(),
    nats_tls_key_file: path.optional(),
    secret_mount_path: path.default('/var/openfaas/secrets'),
    basic_auth: boolean.default(false),
    invoke_auth: oneOf(INVOKE_AUTH_MODES).default('none'),
    callback_allow: allowList.default([]),
    callback_signing: boolean.default(false),
    max_header_count: integer(1).default(100),
    max_header_size: bytes.default(16_384),
  })
  .superRefine(
    (v, ctx) => {
      if (v.initial_retry_wait > v.max_retry_wait) {
        ctx.addIssue({ code: 'custom', path: ['initial_retry_wait'], message: 'is longer than max_retry_wait' });
      }
      if (v.callback_initial_wait > v.callback_max_wait) {
        ctx.addIssue({ code: 'custom', path: ['callback_initial_wait'], message: 'is longer than callback_max_wait' });
      }
      const natsAuths = [v.nats_creds_file, v.nats_nkey_seed_file, v.nats_token_file, v.nats_user].filter((x) => x !== undefined);
      if (natsAuths.length > 1) {
        const message = 'is set with another NATS credential; use one of nats_creds_file, nats_nkey_seed_file, nats_token_file or nats_user';
        ctx.addIssue({ code: 'custom', path: [v.nats_creds_file !== undefined ? 'nats_creds_file' : 'nats_nkey_seed_file'], message });
      }
      if ((v.nats_user === undefined) !== (v.nats_password_file === undefined)) {
        ctx.addIssue({ code: 'custom', path: [v.nats_user === undefined ? 'nats_password_file' : 'nats_user'], message: 'needs nats_user and nats_password_file together' });
      }
      if ((v.nats_tls_cert_file === undefined) !== (v.nats_tls_key_file === undefined)) {
        const missing = v.nats_tls_cert_file === undefined ? 'nats_tls_cert_file' : 'nats_tls_key_file';
        ctx.addIssue({ code: 'custom', path: [missing === 'nats_tls_cert_file' ? 'nats_tls_key_file' : 'nats_tls_cert_file'], message: `is set without ${missing}` });
      }
      if (v.max_ack_pending !== undefined && v.max_ack_pending < v.max_inflight) {
        const message = `is less than max_inflight (${v.max_inflight}): the worker could never fill its slots`;
        ctx.addIssue({ code: 'custom', path: ['max_ack_pending'], message });
      }
    },
    // Compare only two values that parsed; a bad one is already reported on its own.
    { when: (payload) => !payload.issues.some((issue) => ['max_ack_pending', 'max_inflight'].includes(String(issue.path?.[0]))) },
  );

/** The variables after parsing: durations in ms, sizes in bytes, defaults filled in. */
export type Variables = z.output<typeof VariablesSchema>;

/** Every name asyncfn reads, from the environment or as a key of the config file. */
export const VARIABLE_NAMES: readonly string[] = Object.keys(VariablesSchema.shape);
