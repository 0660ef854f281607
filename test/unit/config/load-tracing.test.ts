import t from 'tap';
import { loadConfig, testConfig } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/errors.js';

// loadConfig reads the OTEL_* variables too (src/config/tracing.ts parses them), for the commands
// that trace; tracing-config.test.ts covers what each variable means.

const TRACING = { tracing: { defaultServiceName: 'asyncfn-worker' } };

t.test('a command that traces gets the OTEL_* settings in config.tracing, with its default service name', async (t) => {
  const config = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', max_inflight: '3' }, undefined, TRACING);
  t.equal(config.worker.maxInflight, 3);
  t.same(config.tracing?.exporters, ['otlp']);
  t.equal(config.tracing?.otlpUrl, 'http://collector:4318/v1/traces');
  t.equal(config.tracing?.resourceAttributes['service.name'], 'asyncfn-worker');
  t.ok(Object.isFrozen(config.tracing?.resourceAttributes), 'frozen like the rest of Config');
});

t.test('tracing is off (undefined) without OTEL_* settings, and for commands that do not trace', async (t) => {
  t.equal(loadConfig({}, undefined, TRACING).tracing, undefined);
  // Operator commands (dlq, status, queues) do not read OTEL_* at all: a bad value does not stop them.
  t.equal(loadConfig({ OTEL_TRACES_EXPORTER: 'zipkin' }).tracing, undefined);
  t.equal(testConfig().tracing, undefined);
});

t.test('the OTEL_* variables are read from the environment only, never from the config file', async (t) => {
  t.throws(() => loadConfig({}, 'OTEL_TRACES_EXPORTER: otlp\n', TRACING), ConfigError, 'an unknown key in the file');
});

t.test('bad OTEL_* values are listed with every other problem, in their own words', async (t) => {
  let caught: unknown;
  try {
    loadConfig({ max_inflight: '0', OTEL_TRACES_EXPORTER: 'zipkin', OTEL_BSP_MAX_QUEUE_SIZE: '0' }, undefined, TRACING);
  } catch (err) {
    caught = err;
  }
  t.type(caught, ConfigError);
  t.same((caught as ConfigError).problems, [
    'max_inflight: "0" is out of range (expected an integer ≥ 1)',
    'OTEL_TRACES_EXPORTER: unsupported exporter "zipkin" (otlp, console or none)',
    'OTEL_BSP_MAX_QUEUE_SIZE: "0" is not an integer ≥ 1',
  ]);
});
