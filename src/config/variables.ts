import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDurationMs } from './duration.js';
import { parseRetryStatuses } from '../../actors/retry.policy.js';
import { redactUrl, splitServerList } from './nats-url.js';
import { BACKOFF_MODES, INVOKE_AUTH_MODES, LOG_FORMATS, LOG_LEVELS, QUEUE_NAME, STORAGE_TYPES } from './schema.js';
import { reservedQueueName } from './queue-name.js';
import { parseSizeBytes } from './size.js';

/**
 * The OpenFaaS variables asyncfn reads, keyed by their exact names, each parsed from text to a
 * typed value with its range, its default and its documentation. A default is written once, as an
 * operator would write it (`.prefault('60s')`), parsed like any value and shown as is in the
 * README; a variable without one is optional and load.ts derives its value. Keying the schema by variable name makes every zod
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
const boolean = z.string().transform((text, ctx) => BOOLEANS[text.toLowerCase()] ?? reject(ctx, 'is not a boolean (expected true, false, 1, 0, yes or no)'));
/** A feature switch: `on`/`off`, or any of the boolean words. */
const SWITCHES: Readonly<Record<string, boolean>> = { ...BOOLEANS, on: true, off: false };
const onOff = z.string().transform((text, ctx) => SWITCHES[text.toLowerCase()] ?? reject(ctx, 'is not on or off (expected on, off, true, false, 1, 0, yes or no)'));

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

/** `gateway_public_url`: an http(s) base URL without query or fragment; a trailing slash is dropped. */
const publicUrl = z.string().transform((text, ctx) => {
  if (!isUrl(text, ['http:', 'https:'])) return reject(ctx, 'is not an http(s) URL');
  const url = new URL(text);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '')
    return reject(ctx, 'must be a base URL, without credentials, query or fragment');
  return text.replace(/\/+$/, '');
});

/** `console_trace_url`: empty, or an http(s) URL once its `{call_id}` is filled in. */
const traceUrlTemplate = z.string().superRefine((text, ctx) => {
  if (text === '') return;
  if (!text.includes('{call_id}')) reject(ctx, 'does not contain {call_id}');
  else if (!isUrl(text.replaceAll('{call_id}', 'c'), ['http:', 'https:'])) reject(ctx, 'is not an http(s) URL once {call_id} is filled in');
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
    const reserved = reservedQueueName(name);
    if (reserved !== undefined) return reject(ctx, `names queue "${name}", which is reserved: ${reserved}`);
    if (queues.some((q) => q.name === name)) return reject(ctx, `names queue "${name}" twice`);
    queues.push({ name, maxInflight, upstreamTimeoutMs });
  }
  return queues;
});

/** `callback_allow`: host names (optionally `*.` + a suffix), IP addresses and CIDRs, comma-separated. */
const allowList = z.string().transform((text, ctx) => {
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
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

/** How a variable is documented in the README's configuration tables (test/helpers/config-docs.ts writes them). */
export interface VariableDoc {
  /** The meaning column, markdown. */
  readonly meaning: string;
  /** The default column when it is not a fixed value: a computed or situational default, markdown. */
  readonly default?: string;
  /** Said after the default value, in parentheses: `168h` (7 days). */
  readonly defaultNote?: string;
  /** The table it is listed in: the main one, or the one of "Connecting to a secured NATS". Default 'main'. */
  readonly table?: 'main' | 'nats';
}

/** The README documentation of each variable, registered where the variable is declared. */
export const VARIABLE_DOCS = z.registry<VariableDoc>();

/** Default max_ack_pending is max_inflight plus this: room for retries waiting in JetStream. */
export const ACK_PENDING_HEADROOM = 10_000;

/** A file path; kept as written, read (and checked) when the component starts. */
const path = z.string().min(1);

export const VariablesSchema = z
  .object({
    NATS_URL: natsUrls.optional().register(VARIABLE_DOCS, {
      meaning:
        'NATS server URL(s), comma-separated; or `faas_nats_address` + `faas_nats_port`. Credentials and TLS: see [Connecting to a secured NATS](#connecting-to-a-secured-nats)',
    }),
    faas_nats_address: host.optional().register(VARIABLE_DOCS, { meaning: "NATS host name or IP address when `NATS_URL` is unset (OpenFaaS's name; Pro: `nats_host`)" }),
    faas_nats_port: port.prefault('4222').register(VARIABLE_DOCS, { meaning: 'NATS port with `faas_nats_address` (Pro: `nats_port`)' }),
    stream_replication: integer(1, 5).prefault('1').register(VARIABLE_DOCS, { meaning: 'stream replicas (3 on a 3-node cluster)' }),
    stream_storage: oneOf(STORAGE_TYPES).prefault('file').register(VARIABLE_DOCS, { meaning: '`file` or `memory`' }),
    max_ack_pending: integer(1)
      .optional()
      .register(VARIABLE_DOCS, {
        meaning: 'consumer limit on delivered-but-unacked messages (room for retries waiting in JetStream)',
        default: `\`max_inflight + ${ACK_PENDING_HEADROOM}\``,
      }),
    max_inflight: integer(1).prefault('1').register(VARIABLE_DOCS, { meaning: 'invocations one worker runs at once' }),
    ack_wait: duration(z.number().min(1_000, { error: 'is too short (expected at least 1s)' }))
      .prefault('60s')
      .register(VARIABLE_DOCS, {
        meaning:
          "JetStream ack deadline; the worker extends it every `ack_wait/3` while a function runs, so jobs may run far longer. Also the delayed scheduler's, up to 30s",
      }),
    upstream_timeout: positiveDuration.prefault('60s').register(VARIABLE_DOCS, { meaning: 'longest function call (worker and sync gateway)' }),
    shutdown_grace: duration().prefault('30s').register(VARIABLE_DOCS, { meaning: 'how long a stopping worker lets running invocations finish' }),
    worker_port: listenPort.prefault('8081').register(VARIABLE_DOCS, { meaning: 'worker health and metrics listen port' }),
    worker_host: host
      .prefault('0.0.0.0')
      .register(VARIABLE_DOCS, { meaning: 'worker health and metrics listen address; `asyncfn up` defaults it to `127.0.0.1` (`--host` sets it)' }),
    gateway_port: listenPort.prefault('8080').register(VARIABLE_DOCS, { meaning: 'gateway listen port' }),
    gateway_host: host.prefault('0.0.0.0').register(VARIABLE_DOCS, { meaning: 'gateway listen address; `asyncfn up` defaults it to `127.0.0.1` (`--host` sets it)' }),
    read_timeout: positiveDuration.prefault('60s').register(VARIABLE_DOCS, { meaning: 'the whole request must arrive within it' }),
    write_timeout: positiveDuration.prefault('60s').register(VARIABLE_DOCS, {
      meaning:
        'a gateway connection with no traffic either way for longer is closed (keep it above `upstream_timeout` for slow sync calls); between requests the keep-alive timeout applies instead, 72 s, as the answers say (`Keep-Alive: timeout=72`)',
    }),
    max_body_size: bytes.prefault('1000KiB').register(VARIABLE_DOCS, {
      meaning:
        "largest async body. NATS's default `max_payload` is 1 MiB *including headers*, so the gateway refuses to start if this plus `max_header_size` + 8 KiB of headers (24 KiB by default) does not fit the server's `max_payload`",
    }),
    max_large_body_size: bytes.prefault('1GiB').register(VARIABLE_DOCS, {
      meaning:
        'largest async body. One above `max_body_size` is streamed into the `asyncfn_payloads` Object Store bucket and the message carries its reference (see [Large payloads](#large-payloads)); larger is refused with 413. At or below `max_body_size` there are no large bodies',
    }),
    publish_timeout: positiveDuration.prefault('1s').register(VARIABLE_DOCS, {
      meaning:
        'the longest one request waits for JetStream (idempotency claim, record, PubAck together; a status read, a cancellation) before the gateway answers 503 with `Retry-After`',
    }),
    max_batch_items: integer(1).prefault('10000').register(VARIABLE_DOCS, {
      meaning: 'most items one `POST /async-batch/<name>` may carry; the item past it is refused with `413` and the ones before it are kept (see [Batches](#batches))',
    }),
    max_batch_bytes: bytes.prefault('64MiB').register(VARIABLE_DOCS, {
      meaning:
        "largest `POST /async-batch/<name>` body, read as a stream (never held whole); past it `413`, the items before it kept. Each item's body is also held to `max_body_size`",
    }),
    gateway_public_url: publicUrl.optional().register(VARIABLE_DOCS, {
      meaning:
        "the gateway's URL as functions reach it. When set, the worker gives each function call an `X-Asyncfn-Progress-Url` on it (see [Progress from long jobs](#progress-from-long-jobs)); unset, it sends none",
      default: 'unset; `asyncfn up`: `http://127.0.0.1:<gateway_port>`',
    }),
    gateway_processes: integer(1, 64).prefault('1').register(VARIABLE_DOCS, {
      meaning:
        '`asyncfn gateway` processes sharing the port (node:cluster, 1–64; `asyncfn up` runs one): a primary forks them, replaces one that dies and stops them all on SIGTERM; each has its own NATS connection; `/metrics`, whichever process answers it, shows the sums over them all (the primary gathers them). Worth it only with spare cores (see [Benchmarks](#benchmarks))',
    }),
    front_door: boolean.prefault('true').register(VARIABLE_DOCS, {
      meaning:
        "read every connection's requests on the raw socket first and answer the plain `POST /async-function/<name>` there, 12–20 µs of CPU less per `202` than node:http (see [Benchmarks](#benchmarks)); the first request of any other kind hands its connection to node:http. `false` = node:http reads every request",
    }),
    fair_scheduling: boolean.prefault('true').register(VARIABLE_DOCS, {
      meaning:
        "publish each invocation on its function's lane so workers take a queue's functions round-robin and one function's burst cannot starve the others (see [Flow control](#flow-control-per-function)); `false` = one FIFO per queue, as OpenFaaS CE",
    }),
    console: boolean.prefault('false').register(VARIABLE_DOCS, {
      meaning: 'serve the [Web console](#web-console) at `/ui` (behind `basic_auth`, as `/system/*`)',
      default: '`false`; `asyncfn up`: `true`',
    }),
    console_dir: path.optional().register(VARIABLE_DOCS, {
      meaning: 'the built console (`npm run build` writes it); a missing one stops the gateway at startup when `console` is on',
      default: "`dist/console` in asyncfn's package",
    }),
    console_trace_url: traceUrlTemplate.prefault('').register(VARIABLE_DOCS, {
      meaning:
        "the console's link from an invocation to its traces: a URL with `{call_id}`, e.g. Jaeger's search by the gateway span's `asyncfn.call_id` tag (the record keeps no trace id), `http://localhost:16686/search?service=asyncfn-gateway&tags=%7B%22asyncfn.call_id%22%3A%22{call_id}%22%7D` (`service=asyncfn` under `asyncfn up`)",
      defaultNote: 'no link',
    }),
    functions_file: z.string().optional().register(VARIABLE_DOCS, { meaning: 'a functions registry file (see [Where functions are](#where-functions-are))' }),
    gateway_invoke: boolean
      .prefault('false')
      .register(VARIABLE_DOCS, { meaning: 'call functions through an OpenFaaS gateway at `faas_gateway_address`:`faas_gateway_port`' }),
    function_url_template: urlTemplate
      .prefault('http://{name}.{namespace}.svc.cluster.local:8080')
      .register(VARIABLE_DOCS, { meaning: "otherwise, each function's URL from its name (Kubernetes DNS)" }),
    function_namespace: namespace.prefault('openfaas-fn').register(VARIABLE_DOCS, { meaning: 'namespace when a name has none' }),
    faas_gateway_address: gatewayAddress
      .prefault('gateway')
      .register(VARIABLE_DOCS, { meaning: "the OpenFaaS gateway's host name, or its full base URL (Pro: `gateway_url`)" }),
    faas_gateway_port: port.prefault('8080').register(VARIABLE_DOCS, { meaning: "the OpenFaaS gateway's port, unless `faas_gateway_address` is a URL" }),
    log_level: oneOf(LOG_LEVELS).prefault('info').register(VARIABLE_DOCS, { meaning: '`trace`, `debug`, `info`, `warn`, `error`, `fatal` or `silent`' }),
    log_format: oneOf(LOG_FORMATS).optional().register(VARIABLE_DOCS, {
      meaning: "`json` lines for collectors, or `console` lines for people (OpenFaaS's `logs.format`); colours only on a terminal, see [Observing it](#observing-it)",
      default: '`console` on a terminal, otherwise `json`',
    }),
    write_debug: boolean
      .prefault('false')
      .register(VARIABLE_DOCS, { meaning: 'log request and response bodies (bounded, secret headers redacted) at info level, see [Observing it](#observing-it)' }),
    heap_growing_percent: integer(0, 1000).prefault('50').register(VARIABLE_DOCS, {
      meaning:
        "how far V8's old generation may grow past what survived its last full collection before the next one, in percent, in `asyncfn gateway`, `worker` and `up` (V8's `--heap-growing-percent`, as Go's `GOGC`). `50`: a draining worker's peak RSS ~7 MiB below `100`'s, for twice as many full collections (~3 % more CPU per invocation); the gateway's ~7 MiB below, for no CPU measurable. `100` for a worker limited by CPU rather than memory. `0` leaves it to V8, which lets it grow up to 4× when collecting is cheap: ~50 MiB more peak RSS under load. A `--heap-growing-percent` on node's own command line wins. See **Memory** in [Running in production](#running-in-production)",
    }),
    metrics_function_names: integer(1).prefault('1000').register(VARIABLE_DOCS, {
      meaning:
        'function names one gateway or worker process gives the `function_name` label of its metrics: the first ones it counts; every later one is counted as `_other` (logged once), so a caller naming made-up functions cannot add series without end. See [Observing it](#observing-it)',
    }),
    max_retry_attempts: integer(1).prefault('10').register(VARIABLE_DOCS, { meaning: 'total attempts, the first included' }),
    http_retry_codes: statusList.prefault('408,429,500,502,503,504').register(VARIABLE_DOCS, { meaning: 'function statuses that are retried' }),
    initial_retry_wait: duration().prefault('10s').register(VARIABLE_DOCS, { meaning: 'first (and shortest) back-off delay' }),
    max_retry_wait: duration().prefault('120s').register(VARIABLE_DOCS, { meaning: 'longest back-off delay' }),
    backoff: oneOf(BACKOFF_MODES).prefault('exponential').register(VARIABLE_DOCS, { meaning: '`exponential`, `full` or `equal` jitter' }),
    dlq_non_retryable: boolean.prefault('false').register(VARIABLE_DOCS, { meaning: 'also dead-letter non-retryable failures' }),
    adaptive_concurrency: onOff.prefault('on').register(VARIABLE_DOCS, {
      meaning:
        '`on` or `off`: a function answering `429` (or `503` with `Retry-After`) is throttled, not failed: the message waits in JetStream without using an attempt, and the worker runs fewer of its calls at once, see "Adaptive concurrency" in [When things fail](#when-things-fail)',
    }),
    throttle_max_deliveries: integer(1).prefault('50').register(VARIABLE_DOCS, {
      meaning: 'throttled deliveries of one invocation that do not count as attempts; later throttles do, so an always-throttled function still ends by the retry policy',
    }),
    max_event_age: duration()
      .prefault('0')
      .register(VARIABLE_DOCS, { meaning: 'invocations older than this when delivered are dead-lettered unrun', defaultNote: 'none' }),
    callback_timeout: positiveDuration.prefault('30s').register(VARIABLE_DOCS, { meaning: 'one callback POST from the durable retrier' }),
    callback_max_attempts: integer(1)
      .prefault('10')
      .register(VARIABLE_DOCS, { meaning: "callback attempts, the worker's direct one included, before the result becomes a dead letter" }),
    callback_initial_wait: duration().prefault('10s').register(VARIABLE_DOCS, { meaning: 'first callback back-off delay' }),
    callback_max_wait: duration().prefault('10m').register(VARIABLE_DOCS, { meaning: 'longest callback back-off delay' }),
    callback_first_attempt_timeout: positiveDuration.prefault('1s').register(VARIABLE_DOCS, {
      meaning:
        "the worker's direct callback POST (at most `callback_timeout`); a receiver slower than this gets the result from the durable retrier, so it holds an invocation slot no longer",
    }),
    callback_permanent_codes: optionalStatusList
      .prefault('404,410')
      .register(VARIABLE_DOCS, { meaning: 'receiver statuses that end the retries at once, as a `callbackFailed` dead letter; `none` for none' }),
    callback_max_age: duration().prefault('24h').register(VARIABLE_DOCS, {
      meaning: 'longest a callback is retried, from its hand-off to the callback stream; then a `callbackFailed` dead letter. `0` = no limit',
    }),
    records_ttl: positiveDuration.prefault('168h').register(VARIABLE_DOCS, {
      meaning:
        'how long kept results are kept; invocation records, cancellation markers and large bodies are kept this plus `max_delay`, so that a scheduled invocation keeps them until it runs',
      defaultNote: '7 days',
    }),
    result_max_size: bytes.prefault('256KiB').register(VARIABLE_DOCS, { meaning: 'largest result kept for `GET /async-function/<call-id>/result`' }),
    idempotency_window: positiveDuration.prefault('1h').register(VARIABLE_DOCS, {
      meaning:
        "how long an `Idempotency-Key` maps to its first call id; also the streams' JetStream duplicate window (an existing stream's shorter window is widened at startup)",
    }),
    max_delay: positiveDuration.prefault('720h').register(VARIABLE_DOCS, {
      meaning: 'longest `X-Delay-Seconds` / `X-Not-Before` accepted; records, cancellation markers and large bodies are kept `records_ttl` past it',
      defaultNote: '30 days',
    }),
    queues: queueList
      .optional()
      .register(VARIABLE_DOCS, { meaning: 'queues this worker serves: `name[:max_inflight[:upstream_timeout]],...`', default: 'the default queue' }),
    nats_creds_file: path
      .optional()
      .register(VARIABLE_DOCS, { meaning: 'a `.creds` file (user JWT and NKEY seed) for decentralized auth (operator mode, `nsc`)', table: 'nats' }),
    nats_nkey_seed_file: path.optional().register(VARIABLE_DOCS, {
      meaning: 'a file holding a user NKEY seed (`SU...`); the server lists the public key (`authorization { users = [ { nkey: U... } ] }`)',
      table: 'nats',
    }),
    nats_token_file: path.optional().register(VARIABLE_DOCS, { meaning: 'a file holding a token (`authorization { token: ... }`)', table: 'nats' }),
    nats_user: z.string().optional().register(VARIABLE_DOCS, { meaning: 'a user name, with `nats_password_file`', table: 'nats' }),
    nats_password_file: path.optional().register(VARIABLE_DOCS, { meaning: 'a file holding the password of `nats_user`', table: 'nats' }),
    nats_tls_ca_file: path
      .optional()
      .register(VARIABLE_DOCS, { meaning: "PEM CA bundle that signed the servers' certificates; setting any `nats_tls_*` file requires TLS", table: 'nats' }),
    nats_tls_cert_file: path
      .optional()
      .register(VARIABLE_DOCS, { meaning: 'PEM client certificate, for servers with `tls { verify: true }`; with `nats_tls_key_file`', table: 'nats' }),
    nats_tls_key_file: path.optional().register(VARIABLE_DOCS, { meaning: 'PEM key of `nats_tls_cert_file`', table: 'nats' }),
    secret_mount_path: path.prefault('/var/openfaas/secrets').register(VARIABLE_DOCS, { meaning: 'directory of secret files, one file per secret, as in OpenFaaS' }),
    basic_auth: boolean.prefault('false').register(VARIABLE_DOCS, {
      meaning:
        'basic auth on `/system/*` and the status/cancel routes, see [Authentication](#authentication); with `gateway_invoke`, the same credentials are sent to the OpenFaaS gateway',
    }),
    invoke_auth: oneOf(INVOKE_AUTH_MODES)
      .prefault('none')
      .register(VARIABLE_DOCS, { meaning: '`none`, `basic` or `bearer`: auth on `/function/*` and `POST /async-function/*`' }),
    callback_allow: allowList.prefault('').register(VARIABLE_DOCS, {
      meaning:
        'callback targets allowed although they are loopback, private or otherwise special: host names, `*.suffix`, IPs and CIDRs, comma-separated, see [Callback targets](#callback-targets). `asyncfn up` allows `127.0.0.0/8,::1,localhost` when it is empty and its gateway listens on loopback',
      defaultNote: 'public addresses only',
    }),
    callback_signing: boolean.prefault('false').register(VARIABLE_DOCS, {
      meaning: 'sign callbacks (Standard Webhooks) with the secrets in `callback-signing-secret`, see [Signed callbacks](#signed-callbacks)',
    }),
    max_header_count: integer(1).prefault('100').register(VARIABLE_DOCS, { meaning: 'most header fields one request may carry; more → `431`' }),
    max_header_size: bytes.prefault('16KiB').register(VARIABLE_DOCS, { meaning: 'largest request line plus headers; more → `431`' }),
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
        ctx.addIssue({
          code: 'custom',
          path: [v.nats_user === undefined ? 'nats_password_file' : 'nats_user'],
          message: 'needs nats_user and nats_password_file together',
        });
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
