import t from 'tap';
import { type Config, loadConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/errors.js';
import { problemsOf } from '../../helpers/config-problems.js';
import { DEFAULT_CONSOLE_DIR } from '../../../src/config/console-dir.js';

t.test('defaults, with no variables set', async (t) => {
  t.same(loadConfig({}), {
    nats: { auth: {}, tls: {} },
    queue: { stream: 'faas-request', subject: 'faas-request', durable: 'faas-workers', replicas: 1, storage: 'file', maxAckPending: 10_001 },
    worker: {
      maxInflight: 1,
      ackWaitMs: 60_000,
      upstreamTimeoutMs: 60_000,
      shutdownGraceMs: 30_000,
      queues: [],
      port: 8081,
      host: '0.0.0.0',
      adaptiveConcurrency: true,
      throttleMaxDeliveries: 50,
    },
    gateway: {
      port: 8080,
      host: '0.0.0.0',
      readTimeoutMs: 60_000,
      writeTimeoutMs: 60_000,
      upstreamTimeoutMs: 60_000,
      maxBodyBytes: 1_024_000,
      maxLargeBodyBytes: 1_073_741_824,
      publishTimeoutMs: 1_000,
      maxBatchItems: 10_000,
      maxBatchBytes: 64 * 1024 * 1024,
      processes: 1,
      frontDoor: true,
      fairScheduling: true,
      console: { enabled: false, dir: DEFAULT_CONSOLE_DIR, traceUrlTemplate: '' },
    },
    functions: {
      mode: 'template',
      urlTemplate: 'http://{name}.{namespace}.svc.cluster.local:8080',
      defaultNamespace: 'openfaas-fn',
      gatewayUrl: 'http://gateway:8080',
    },
    log: { level: 'info', format: 'json', colour: false, writeDebug: false },
    runtime: { heapGrowingPercent: 50, metricsFunctionNames: 1000 },
    retry: { maxAttempts: 10, retryStatuses: [408, 429, 500, 502, 503, 504], initialWaitMs: 10_000, maxWaitMs: 120_000, mode: 'exponential' },
    deadLetters: { nonRetryable: false, maxEventAgeMs: 0 },
    callback: {
      timeoutMs: 30_000,
      maxAttempts: 10,
      initialWaitMs: 10_000,
      maxWaitMs: 600_000,
      firstAttemptTimeoutMs: 1_000,
      permanentStatuses: [404, 410],
      maxAgeMs: 24 * 3_600_000,
    },
    records: { ttlMs: 7 * 24 * 3_600_000, resultMaxBytes: 262_144, idempotencyWindowMs: 3_600_000, maxDelayMs: 30 * 24 * 3_600_000 },
    security: {
      secretMountPath: '/var/openfaas/secrets',
      basicAuth: false,
      invokeAuth: 'none',
      callbackAllow: [],
      signCallbacks: false,
      maxHeaderCount: 100,
      maxHeaderBytes: 16_384,
    },
  } satisfies Config);
  t.equal(loadConfig({}).nats.url, undefined, 'NATS is "not configured"');
});

t.test('every variable maps to its field', async (t) => {
  const cases: ReadonlyArray<[Record<string, string>, (c: Config) => unknown, unknown]> = [
    [{ NATS_URL: 'nats://n1:4222' }, (c) => c.nats.url, 'nats://n1:4222'],
    [{ NATS_URL: 'nats://a:4222, tls://b:4222,ws://c:80,wss://d' }, (c) => c.nats.url, 'nats://a:4222,tls://b:4222,ws://c:80,wss://d'],
    [{ faas_nats_address: 'nats' }, (c) => c.nats.url, 'nats://nats:4222'],
    [{ faas_nats_address: 'nats.example.com', faas_nats_port: '4333' }, (c) => c.nats.url, 'nats://nats.example.com:4333'],
    [{ faas_nats_address: '::1' }, (c) => c.nats.url, 'nats://[::1]:4222'],
    [{ stream_replication: '3' }, (c) => c.queue.replicas, 3],
    [{ stream_storage: 'memory' }, (c) => c.queue.storage, 'memory'],
    [{ max_ack_pending: '500' }, (c) => c.queue.maxAckPending, 500],
    [{ max_inflight: '8' }, (c) => c.worker.maxInflight, 8],
    [{ max_inflight: '8' }, (c) => c.queue.maxAckPending, 10_008],
    [{ ack_wait: '2m' }, (c) => c.worker.ackWaitMs, 120_000],
    [{ upstream_timeout: '30s' }, (c) => c.worker.upstreamTimeoutMs, 30_000],
    [{ upstream_timeout: '30s' }, (c) => c.gateway.upstreamTimeoutMs, 30_000],
    [{ shutdown_grace: '0' }, (c) => c.worker.shutdownGraceMs, 0],
    [{ worker_port: '9091' }, (c) => c.worker.port, 9091],
    [{ worker_host: '127.0.0.1' }, (c) => c.worker.host, '127.0.0.1'],
    [{ gateway_port: '9090' }, (c) => c.gateway.port, 9090],
    [{ gateway_host: 'localhost' }, (c) => c.gateway.host, 'localhost'],
    [{ read_timeout: '10s' }, (c) => c.gateway.readTimeoutMs, 10_000],
    [{ write_timeout: '1m30s' }, (c) => c.gateway.writeTimeoutMs, 90_000],
    [{ max_body_size: '512KiB' }, (c) => c.gateway.maxBodyBytes, 524_288],
    [{ publish_timeout: '250ms' }, (c) => c.gateway.publishTimeoutMs, 250],
    [{ functions_file: './functions.yml' }, (c) => [c.functions.mode, c.functions.file], ['file', './functions.yml']],
    [{ functions_file: 'f.yml', gateway_invoke: 'true' }, (c) => c.functions.mode, 'file'],
    [{ gateway_invoke: 'true' }, (c) => c.functions.mode, 'gateway'],
    [{ gateway_invoke: 'false' }, (c) => c.functions.mode, 'template'],
    [{ function_url_template: 'https://{name}.fns.example.com' }, (c) => c.functions.urlTemplate, 'https://{name}.fns.example.com'],
    [{ function_namespace: 'team-a' }, (c) => c.functions.defaultNamespace, 'team-a'],
    [{ max_retry_attempts: '3' }, (c) => c.retry.maxAttempts, 3],
    [{ http_retry_codes: '429, 503' }, (c) => c.retry.retryStatuses, [429, 503]],
    [{ initial_retry_wait: '1s', max_retry_wait: '5s' }, (c) => [c.retry.initialWaitMs, c.retry.maxWaitMs], [1_000, 5_000]],
    [{ backoff: 'full' }, (c) => c.retry.mode, 'full'],
    [{ dlq_non_retryable: 'true' }, (c) => c.deadLetters.nonRetryable, true],
    [{ adaptive_concurrency: 'off' }, (c) => c.worker.adaptiveConcurrency, false],
    [{ adaptive_concurrency: 'ON' }, (c) => c.worker.adaptiveConcurrency, true],
    [{ adaptive_concurrency: 'false' }, (c) => c.worker.adaptiveConcurrency, false],
    [{ throttle_max_deliveries: '5' }, (c) => c.worker.throttleMaxDeliveries, 5],
    [{ max_event_age: '1h' }, (c) => c.deadLetters.maxEventAgeMs, 3_600_000],
    [{ callback_timeout: '5s', callback_max_attempts: '4' }, (c) => [c.callback.timeoutMs, c.callback.maxAttempts], [5_000, 4]],
    [{ callback_initial_wait: '1s', callback_max_wait: '1m' }, (c) => [c.callback.initialWaitMs, c.callback.maxWaitMs], [1_000, 60_000]],
    [{ callback_first_attempt_timeout: '250ms' }, (c) => c.callback.firstAttemptTimeoutMs, 250],
    [{ callback_permanent_codes: '404, 410,422' }, (c) => c.callback.permanentStatuses, [404, 410, 422]],
    [{ callback_permanent_codes: 'None' }, (c) => c.callback.permanentStatuses, []],
    [{ callback_max_age: '2h' }, (c) => c.callback.maxAgeMs, 7_200_000],
    [{ callback_max_age: '0' }, (c) => c.callback.maxAgeMs, 0],
    [{ records_ttl: '24h' }, (c) => c.records.ttlMs, 86_400_000],
    [{ result_max_size: '1MiB' }, (c) => c.records.resultMaxBytes, 1_048_576],
    [{ idempotency_window: '24h' }, (c) => c.records.idempotencyWindowMs, 86_400_000],
    [{ max_delay: '1h' }, (c) => c.records.maxDelayMs, 3_600_000],
    [
      { queues: 'faas-request, slow:2:2h, bulk:50', max_inflight: '10', upstream_timeout: '30s' },
      (c) => c.worker.queues,
      [
        { name: 'faas-request', maxInflight: 10, upstreamTimeoutMs: 30_000 },
        { name: 'slow', maxInflight: 2, upstreamTimeoutMs: 7_200_000 },
        { name: 'bulk', maxInflight: 50, upstreamTimeoutMs: 30_000 },
      ],
    ],
    [{ faas_gateway_address: 'gw.openfaas' }, (c) => c.functions.gatewayUrl, 'http://gw.openfaas:8080'],
    [{ faas_gateway_address: 'gw', faas_gateway_port: '31112' }, (c) => c.functions.gatewayUrl, 'http://gw:31112'],
    [{ faas_gateway_address: 'https://gw.example.com/' }, (c) => c.functions.gatewayUrl, 'https://gw.example.com'],
    [{ faas_gateway_address: 'http://gw:1234/prefix//', faas_gateway_port: '9' }, (c) => c.functions.gatewayUrl, 'http://gw:1234/prefix'],
    [{ log_level: 'debug' }, (c) => c.log.level, 'debug'],
    [{ log_level: 'WARN' }, (c) => c.log.level, 'warn'],
    [{ log_format: 'console' }, (c) => c.log.format, 'console'],
    [{ heap_growing_percent: '0' }, (c) => c.runtime.heapGrowingPercent, 0],
    [{ heap_growing_percent: '200' }, (c) => c.runtime.heapGrowingPercent, 200],
    [{ write_debug: 'true' }, (c) => c.log.writeDebug, true],
    [{ nats_creds_file: '/s/user.creds' }, (c) => c.nats.auth.credsFile, '/s/user.creds'],
    [{ nats_nkey_seed_file: '/s/seed' }, (c) => c.nats.auth.nkeySeedFile, '/s/seed'],
    [{ nats_token_file: '/s/token' }, (c) => c.nats.auth.tokenFile, '/s/token'],
    [{ nats_user: 'asyncfn', nats_password_file: '/s/pw' }, (c) => [c.nats.auth.user, c.nats.auth.passwordFile], ['asyncfn', '/s/pw']],
    [
      { nats_tls_ca_file: '/t/ca.pem', nats_tls_cert_file: '/t/c.pem', nats_tls_key_file: '/t/k.pem' },
      (c) => c.nats.tls,
      { caFile: '/t/ca.pem', certFile: '/t/c.pem', keyFile: '/t/k.pem' },
    ],
    [{ secret_mount_path: '/run/secrets' }, (c) => c.security.secretMountPath, '/run/secrets'],
    [{ basic_auth: 'true' }, (c) => c.security.basicAuth, true],
    [{ invoke_auth: 'Bearer' }, (c) => c.security.invokeAuth, 'bearer'],
    [
      { callback_allow: 'hooks.internal, *.svc.cluster.local,10.0.0.0/8,::1,fd00::/8' },
      (c) => c.security.callbackAllow,
      ['hooks.internal', '*.svc.cluster.local', '10.0.0.0/8', '::1', 'fd00::/8'],
    ],
    [{ callback_signing: 'yes' }, (c) => c.security.signCallbacks, true],
    [{ max_header_count: '50', max_header_size: '8KiB' }, (c) => [c.security.maxHeaderCount, c.security.maxHeaderBytes], [50, 8_192]],
  ];
  for (const [env, field, expected] of cases) t.same(field(loadConfig(env)), expected, JSON.stringify(env));
});

t.test('NATS credentials and TLS files: one kind of credential, pairs complete', async (t) => {
  t.same(problemsOf({ nats_token_file: '/t', nats_creds_file: '/c' }), [
    'nats_creds_file: "/c" is set with another NATS credential; use one of nats_creds_file, nats_nkey_seed_file, nats_token_file or nats_user',
  ]);
  t.same(problemsOf({ nats_user: 'u' }), ['nats_user: "u" needs nats_user and nats_password_file together']);
  t.same(problemsOf({ nats_tls_cert_file: '/c.pem' }), ['nats_tls_cert_file: "/c.pem" is set without nats_tls_key_file']);
});

t.test('callback_allow names what is not a host, IP or CIDR', async (t) => {
  t.same(problemsOf({ callback_allow: 'ok.example, 10.0.0.0/33, bad host' }), [
    'callback_allow: "ok.example, 10.0.0.0/33, bad host" has "10.0.0.0/33", "bad host", which is not a host name, *.suffix, IP address or CIDR',
  ]);
});

t.test('callback policy variables name their problems', async (t) => {
  t.same(problemsOf({ callback_permanent_codes: '404,gone' }), [
    'callback_permanent_codes: "404,gone" is not a comma-separated list of HTTP statuses (e.g. 404,410) or none',
  ]);
  t.same(problemsOf({ callback_first_attempt_timeout: '0' }), ['callback_first_attempt_timeout: "0" is too short (expected more than 0s)']);
  t.same(problemsOf({ callback_max_age: 'a day' }), ['callback_max_age: "a day" is not a duration (expected e.g. 60s, 1m, 500ms or bare seconds)']);
});

t.test('NATS_URL takes precedence over faas_nats_address', async (t) => {
  const config = loadConfig({ NATS_URL: 'nats://primary:4222', faas_nats_address: 'other', faas_nats_port: '4333' });
  t.equal(config.nats.url, 'nats://primary:4222');
});

t.test('empty and blank variables count as unset; unrelated variables are ignored', async (t) => {
  const config = loadConfig({ NATS_URL: '', max_inflight: '  ', ack_wait: undefined, PATH: '/bin', HOME: '/root' });
  t.equal(config.nats.url, undefined);
  t.equal(config.worker.maxInflight, 1);
  t.equal(config.worker.ackWaitMs, 60_000);
});

t.test('booleans accept true/false/1/0/yes/no in any case', async (t) => {
  const table: ReadonlyArray<[string, boolean]> = [
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['Yes', true],
    ['false', false],
    ['False', false],
    ['0', false],
    ['no', false],
    ['NO', false],
  ];
  for (const [text, expected] of table) t.equal(loadConfig({ write_debug: text }).log.writeDebug, expected, text);
  for (const text of ['maybe', 't', 'on', '2']) {
    t.same(problemsOf({ write_debug: text }), [`write_debug: "${text}" is not a boolean (expected true, false, 1, 0, yes or no)`]);
  }
});

t.test('adaptive_concurrency and throttle_max_deliveries: problems', async (t) => {
  t.same(problemsOf({ adaptive_concurrency: 'maybe' }), ['adaptive_concurrency: "maybe" is not on or off (expected on, off, true, false, 1, 0, yes or no)']);
  t.same(problemsOf({ throttle_max_deliveries: '0' }), ['throttle_max_deliveries: "0" is out of range (expected an integer ≥ 1)']);
});

t.test('durations: accepted syntaxes and problems', async (t) => {
  const valid: ReadonlyArray<[string, number]> = [
    ['60s', 60_000],
    ['1m', 60_000],
    ['1m30s', 90_000],
    ['1500ms', 1_500],
    ['90', 90_000],
    ['1.5', 1_500],
  ];
  for (const [text, ms] of valid) t.equal(loadConfig({ ack_wait: text }).worker.ackWaitMs, ms, text);
  const expected = 'is not a duration (expected e.g. 60s, 1m, 500ms or bare seconds)';
  for (const text of ['abc', '1x', '60 s']) t.same(problemsOf({ ack_wait: text }), [`ack_wait: "${text}" ${expected}`]);
  t.same(problemsOf({ ack_wait: '-1s' }), ['ack_wait: "-1s" is negative (expected a duration ≥ 0)']);
  t.same(problemsOf({ ack_wait: '500ms' }), ['ack_wait: "500ms" is too short (expected at least 1s)']);
  t.same(problemsOf({ upstream_timeout: '0s' }), ['upstream_timeout: "0s" is too short (expected more than 0s)']);
  t.same(problemsOf({ publish_timeout: '0' }), ['publish_timeout: "0" is too short (expected more than 0s)']);
});

t.test('integers reject fractions, junk and out-of-range values', async (t) => {
  t.same(problemsOf({ max_inflight: '12abc' }), ['max_inflight: "12abc" is not an integer (expected an integer ≥ 1)']);
  t.same(problemsOf({ max_inflight: '1.5' }), ['max_inflight: "1.5" is not an integer (expected an integer ≥ 1)']);
  t.same(problemsOf({ max_inflight: '0' }), ['max_inflight: "0" is out of range (expected an integer ≥ 1)']);
  t.same(problemsOf({ stream_replication: '6' }), ['stream_replication: "6" is out of range (expected an integer from 1 to 5)']);
  t.same(problemsOf({ heap_growing_percent: '1001' }), ['heap_growing_percent: "1001" is out of range (expected an integer from 0 to 1000)']);
  for (const name of ['faas_nats_port', 'faas_gateway_port']) {
    t.same(problemsOf({ [name]: '65536' }), [`${name}: "65536" is out of range (expected an integer from 1 to 65535)`]);
    t.same(problemsOf({ [name]: '0' }), [`${name}: "0" is out of range (expected an integer from 1 to 65535)`]);
  }
  // Ports asyncfn listens on may be 0: the OS picks a free one.
  for (const name of ['worker_port', 'gateway_port']) {
    t.same(problemsOf({ [name]: '65536' }), [`${name}: "65536" is out of range (expected an integer from 0 to 65535)`]);
    t.doesNotThrow(() => loadConfig({ [name]: '0' }), `${name}=0 is accepted`);
  }
});

t.test('sizes', async (t) => {
  t.equal(loadConfig({ max_body_size: '1MB' }).gateway.maxBodyBytes, 1_000_000);
  t.equal(loadConfig({ max_body_size: '2097152' }).gateway.maxBodyBytes, 2_097_152);
  t.same(problemsOf({ max_body_size: '1M' }), ['max_body_size: "1M" is not a size (expected e.g. 1048576, 1000KiB, 1MiB or 1MB)']);
  t.same(problemsOf({ max_body_size: '0' }), ['max_body_size: "0" is too small (expected at least 1 byte)']);
});

t.test('URLs, hosts and names are checked', async (t) => {
  t.same(problemsOf({ NATS_URL: 'nats://ok:4222,http://bad:80' }), [
    'NATS_URL: "nats://ok:4222,http://bad:80" has "http://bad:80", which is not a nats://, tls://, ws:// or wss:// URL',
  ]);
  t.same(problemsOf({ NATS_URL: 'nats://a,' }), ['NATS_URL: "nats://a," has "", which is not a nats://, tls://, ws:// or wss:// URL']);
  t.same(problemsOf({ faas_nats_address: 'nats:4222' }), ['faas_nats_address: "nats:4222" is not a host name or IP address']);
  t.same(problemsOf({ gateway_host: 'a b' }), ['gateway_host: "a b" is not a host name or IP address']);
  t.same(problemsOf({ function_url_template: 'http://fn:8080' }), ['function_url_template: "http://fn:8080" does not contain {name}']);
  t.same(problemsOf({ function_url_template: 'ftp://{name}' }), [
    'function_url_template: "ftp://{name}" is not an http(s) URL once {name} and {namespace} are filled in',
  ]);
  t.same(problemsOf({ function_namespace: 'Team_A' }), ['function_namespace: "Team_A" is not a namespace (expected a DNS-1123 label)']);
  t.same(problemsOf({ faas_gateway_address: 'gw/x' }), ['faas_gateway_address: "gw/x" is not a host name, IP address or http(s) URL']);
  t.same(problemsOf({ stream_storage: 'disk' }), ['stream_storage: "disk" is not one of file, memory']);
  t.same(problemsOf({ log_format: 'text' }), ['log_format: "text" is not one of json, console']);
});

t.test('max_ack_pending must be at least max_inflight', async (t) => {
  t.same(problemsOf({ max_inflight: '10', max_ack_pending: '5' }), ['max_ack_pending: "5" is less than max_inflight (10): the worker could never fill its slots']);
  t.equal(loadConfig({ max_inflight: '10', max_ack_pending: '10' }).queue.maxAckPending, 10);
  // A bad max_inflight is reported once, on its own, not compared.
  t.same(problemsOf({ max_inflight: 'x', max_ack_pending: '5' }), ['max_inflight: "x" is not an integer (expected an integer ≥ 1)']);
});

t.test('every problem is reported at once, in a ConfigError', async (t) => {
  const env = {
    ack_wait: 'abc',
    max_inflight: '12abc',
    stream_replication: '0',
    write_debug: 'maybe',
    log_level: 'loud',
    max_body_size: 'big',
    faas_nats_port: '99999',
    function_url_template: 'http://x',
  };
  const error = t.throws(() => loadConfig(env)) as ConfigError;
  t.type(error, ConfigError);
  t.equal(error.code, 'ASYNCFN_ERR_CONFIG');
  t.equal(error.problems.length, Object.keys(env).length);
  for (const name of Object.keys(env)) {
    t.ok(
      error.problems.some((problem) => problem.startsWith(`${name}: ${JSON.stringify(env[name as keyof typeof env])} `)),
      name,
    );
    t.match(error.message, name);
  }
});

t.test('retry, callback and queue settings are checked', async (t) => {
  t.same(problemsOf({ http_retry_codes: '429,abc' }), ['http_retry_codes: "429,abc" is not a comma-separated list of HTTP statuses (e.g. 429,502)']);
  t.same(problemsOf({ backoff: 'linear' }), ['backoff: "linear" is not one of exponential, full, equal']);
  t.same(problemsOf({ initial_retry_wait: '5m' }), ['initial_retry_wait: "5m" is longer than max_retry_wait']);
  t.same(problemsOf({ callback_initial_wait: '1h' }), ['callback_initial_wait: "1h" is longer than callback_max_wait']);
  t.match(problemsOf({ queues: 'ok,bad.name' })[0], /^queues: .* has "bad\.name", expected name\[:max_inflight\[:upstream_timeout\]\]/);
  t.match(problemsOf({ queues: 'a:0' })[0], /has "a:0"/);
  t.match(problemsOf({ queues: 'a,a' })[0], /names queue "a" twice/);
});

t.test('console: off by default; console_dir and console_trace_url as given; a trace URL needs {call_id}', async (t) => {
  const on = loadConfig({ console: 'true', console_dir: '/srv/console', console_trace_url: 'http://jaeger:16686/search?tags={call_id}' });
  t.same(on.gateway.console, { enabled: true, dir: '/srv/console', traceUrlTemplate: 'http://jaeger:16686/search?tags={call_id}' });
  t.match(DEFAULT_CONSOLE_DIR, /dist[/\\]console$/);
  const err = t.throws(() => loadConfig({ console_trace_url: 'http://jaeger:16686/trace' })) as ConfigError;
  t.match(err.problems.join('\n'), /console_trace_url: .*does not contain \{call_id\}/);
});
