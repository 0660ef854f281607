import t from 'tap';
import { unknownVariableWarnings } from '../../../src/config/index.js';
import { editDistance, nearestKnownName } from '../../../src/config/variable-warnings.js';

t.test('nothing to say about known names, aliases, and the environment of other programs', async (t) => {
  t.same(
    unknownVariableWarnings({
      max_inflight: '2',
      NATS_URL: 'nats://x',
      retry_http_codes: '418',
      ASYNCFN_CONFIG: 'a.yaml',
      PATH: '/usr/bin',
      HOME: '/root',
      http_proxy: 'http://proxy:3128',
      no_proxy: 'localhost',
      npm_config_cache: '/tmp',
      npm_package_bin_asyncfn: 'dist/src/cli/main.js',
      npm_package_scripts_start: 'tsc && node dist/src/cli/main.js up',
      NODE_OPTIONS: '--enable-source-maps',
      OTEL_SERVICE_NAME: 'x',
      nats_stream: 'faas-request',
      nats_durable: 'faas-workers',
      nats_max: '',
    }),
    [],
  );
});

t.test('misspelt names get a "did you mean"', async (t) => {
  t.same(unknownVariableWarnings({ max_infligth: '4' }), ['max_infligth is not an asyncfn variable and is ignored (did you mean max_inflight?)']);
  t.same(unknownVariableWarnings({ upstream_timout: '4' }), ['upstream_timout is not an asyncfn variable and is ignored (did you mean upstream_timeout?)']);
  t.same(unknownVariableWarnings({ write_debgu: 'true' }), ['write_debgu is not an asyncfn variable and is ignored (did you mean write_debug?)']);
  t.same(unknownVariableWarnings({ retry_http_code: '418' }), [
    'retry_http_code is not an asyncfn variable and is ignored (did you mean retry_http_codes, the OpenFaaS Pro name of http_retry_codes?)',
  ]);
});

t.test('names in the wrong case', async (t) => {
  t.same(unknownVariableWarnings({ MAX_INFLIGHT: '4' }), ['MAX_INFLIGHT is not read: names are case-sensitive (did you mean max_inflight?)']);
  t.same(unknownVariableWarnings({ nats_url: 'nats://x' }), ['nats_url is not read: names are case-sensitive (did you mean NATS_URL?)']);
});

t.test('names that look like settings without a close match are still warned about', async (t) => {
  t.same(unknownVariableWarnings({ queue_mode: 'jetstream', max_concurrency: '5', callback_secret: 'x' }), [
    'callback_secret is not an asyncfn variable and is ignored',
    'max_concurrency is not an asyncfn variable and is ignored',
    'queue_mode is not an asyncfn variable and is ignored',
  ]);
});

t.test('OpenFaaS settings asyncfn does not have say what to do instead', async (t) => {
  t.same(unknownVariableWarnings({ nats_stream: 'jobs', debug: 'true', print_request_body: 'true', max_waiting: '512' }), [
    'debug is an OpenFaaS setting asyncfn does not read: use log_level=debug',
    'max_waiting is an OpenFaaS setting asyncfn does not read: the worker pulls only as many messages as it has free slots, so it needs no max_waiting',
    "nats_stream is an OpenFaaS setting asyncfn does not read: a queue's stream is named after it: faas-request for the default queue, <name> for each queue of queues (set queues=<name> to serve a named queue)",
    'print_request_body is an OpenFaaS setting asyncfn does not read: use write_debug=true',
  ]);
});

t.test("the OpenFaaS Pro chart's names for a named queue are what asyncfn does with queues: no warning; limiter_enabled points at adaptive_concurrency", async (t) => {
  t.same(unknownVariableWarnings({ queues: 'slow-fns:2, other', nats_stream: 'slow-fns', nats_durable: 'slow-fns-workers' }), []);
  t.same(unknownVariableWarnings({ queues: 'other', nats_stream: 'other', nats_durable: 'faas-workers' }), []);
  t.same(unknownVariableWarnings({ queues: 'other', nats_stream: 'slow-fns', nats_durable: 'slow-fns-workers', limiter_enabled: 'true' }), [
    'limiter_enabled is an OpenFaaS setting asyncfn does not read: use adaptive_concurrency (on by default): a function answering 429 is throttled, not failed',
    "nats_durable is an OpenFaaS setting asyncfn does not read: a queue's durable consumer is <queue>-workers: faas-workers for the default queue",
    "nats_stream is an OpenFaaS setting asyncfn does not read: a queue's stream is named after it: faas-request for the default queue, <name> for each queue of queues (set queues=<name> to serve a named queue)",
  ]);
});

t.test('edit distance counts a swapped pair as one edit', async (t) => {
  t.equal(editDistance('max_inflight', 'max_inflight'), 0);
  t.equal(editDistance('max_infligth', 'max_inflight'), 1);
  t.equal(editDistance('ack_wiat', 'ack_wait'), 1);
  t.equal(editDistance('', 'abc'), 3);
  t.equal(editDistance('kitten', 'sitting'), 3);
  t.equal(nearestKnownName('zzzz'), undefined, 'nothing close: no guess');
  t.equal(nearestKnownName('ack_wiat'), 'ack_wait');
});
