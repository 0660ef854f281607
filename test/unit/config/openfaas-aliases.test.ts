import t from 'tap';
import { loadConfig, OPENFAAS_ALIASES } from '../../../src/config/index.js';
import { VARIABLE_NAMES } from '../../../src/config/variables.js';
import { problemsOf } from '../../helpers/config-problems.js';

// The OpenFaaS Pro JetStream queue-worker's names (faas-netes chart/queue-worker) are read as
// aliases; before, `retry_http_codes=418` was ignored in silence and `nats_host` left NATS unset.

t.test('every alias names an asyncfn variable and is not one itself', async (t) => {
  for (const [alias, name] of Object.entries(OPENFAAS_ALIASES)) {
    t.ok(VARIABLE_NAMES.includes(name), `${alias} → ${name}`);
    t.notOk(VARIABLE_NAMES.includes(alias), `${alias} is not also a variable`);
  }
});

t.test('OpenFaaS Pro names set what their asyncfn names set', async (t) => {
  const c = loadConfig({
    nats_host: 'nats.openfaas.svc.cluster.local',
    nats_port: '4333',
    nats_stream_replicas: '3',
    retry_http_codes: '418,503',
    log_encoding: 'console',
    gateway_url: 'http://gateway.openfaas.svc.cluster.local:8080/',
  });
  t.equal(c.nats.url, 'nats://nats.openfaas.svc.cluster.local:4333');
  t.equal(c.queue.replicas, 3);
  t.same(c.retry.retryStatuses, [418, 503]);
  t.equal(c.log.format, 'console');
  t.equal(c.functions.gatewayUrl, 'http://gateway.openfaas.svc.cluster.local:8080');
  t.equal(loadConfig({ nats_host: 'nats' }).nats.url, 'nats://nats:4222', 'nats_port defaults to 4222 like faas_nats_port');
});

t.test('in the config file too', async (t) => {
  const c = loadConfig({}, 'nats_host: nats\nretry_http_codes: "418"\n');
  t.equal(c.nats.url, 'nats://nats:4222');
  t.same(c.retry.retryStatuses, [418]);
});

t.test('an alias and its name with the same value agree; with different values they are a config error', async (t) => {
  t.same(loadConfig({ retry_http_codes: '418', http_retry_codes: '418' }).retry.retryStatuses, [418]);
  t.same(problemsOf({ retry_http_codes: '418', http_retry_codes: '500' }), [
    'retry_http_codes: "418" and http_retry_codes: "500" are both set in the environment; retry_http_codes is the OpenFaaS Pro name of http_retry_codes, set only one of them',
  ]);
  t.same(problemsOf({}, 'nats_host: a\nfaas_nats_address: b\n'), [
    'nats_host: "a" and faas_nats_address: "b" are both set in the config file; nats_host is the OpenFaaS Pro name of faas_nats_address, set only one of them',
  ]);
});

t.test('across places the usual precedence holds: the environment over the file', async (t) => {
  t.same(loadConfig({ http_retry_codes: '500' }, 'retry_http_codes: "418"\n').retry.retryStatuses, [500]);
  t.same(loadConfig({ retry_http_codes: '418' }, 'http_retry_codes: "500"\n').retry.retryStatuses, [418]);
});

t.test('a bad value is reported under the name the operator used', async (t) => {
  t.same(problemsOf({ retry_http_codes: 'teapot' }), ['retry_http_codes (http_retry_codes): "teapot" is not a comma-separated list of HTTP statuses (e.g. 429,502)']);
  t.same(problemsOf({ nats_port: '0' }), ['nats_port (faas_nats_port): "0" is out of range (expected an integer from 1 to 65535)']);
  // The file's alias lost to the environment's name: the problem is the environment's.
  t.same(problemsOf({ http_retry_codes: 'x' }, 'retry_http_codes: "418"\n'), ['http_retry_codes: "x" is not a comma-separated list of HTTP statuses (e.g. 429,502)']);
});

t.test('an unsupported OpenFaaS name in the config file says what to use instead', async (t) => {
  t.same(problemsOf({}, 'max_waiting: "512"\n'), [
    'config file: unknown key "max_waiting": an OpenFaaS setting asyncfn does not read, the worker pulls only as many messages as it has free slots, so it needs no max_waiting',
  ]);
});
