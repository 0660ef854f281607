import { isDeepStrictEqual } from 'node:util';
import { parseKeyPairsIntoRecord } from '@opentelemetry/core';
import fc from 'fast-check';
import t from 'tap';
import { ConfigError } from '../../../src/errors.js';
import { parseKeyPairs, tracingSettingsFrom } from '../../../src/config/tracing.js';

t.test('tracing is off unless an exporter or an OTLP endpoint is configured', async (t) => {
  t.equal(tracingSettingsFrom({}, 'svc'), undefined);
  t.equal(tracingSettingsFrom({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' }, 'svc'), undefined);
  t.equal(tracingSettingsFrom({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, 'svc'), undefined, 'none wins');
  t.equal(tracingSettingsFrom({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }, 'svc'), undefined);
  t.equal(tracingSettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, 'svc'), undefined, 'blank is unset');
});

t.test('an OTLP endpoint alone turns on the otlp exporter; the generic one gets /v1/traces', async (t) => {
  const s = tracingSettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, 'asyncfn-gateway');
  t.same(s?.exporters, ['otlp']);
  t.equal(s?.otlpUrl, 'http://collector:4318/v1/traces');
  t.equal(s?.resourceAttributes['service.name'], 'asyncfn-gateway');
  t.equal(s?.sampler, 'parentbased_always_on');
  t.equal(s?.samplerRatio, 1);
  t.same(s?.batch, {});
});

t.test('the traces endpoint is used as is and wins over the generic one', async (t) => {
  const s = tracingSettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://b/custom/path' }, 'svc');
  t.equal(s?.otlpUrl, 'https://b/custom/path');
});

t.test('OTEL_TRACES_EXPORTER alone uses the default OTLP URL; console is accepted, duplicates dropped', async (t) => {
  t.equal(tracingSettingsFrom({ OTEL_TRACES_EXPORTER: 'otlp' }, 'svc')?.otlpUrl, 'http://localhost:4318/v1/traces');
  t.same(tracingSettingsFrom({ OTEL_TRACES_EXPORTER: 'OTLP, console,otlp' }, 'svc')?.exporters, ['otlp', 'console']);
});

t.test('service name, resource attributes, headers, sampler and batch limits come from env', async (t) => {
  const s = tracingSettingsFrom(
    {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_SERVICE_NAME: 'named',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=ignored,deployment.environment=prod%20eu',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20a,x-a=1',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-a=2',
      OTEL_TRACES_SAMPLER: 'ParentBased_TraceIdRatio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '64',
    },
    'svc',
  );
  t.same(s?.resourceAttributes, { 'service.name': 'named', 'deployment.environment': 'prod eu' });
  t.same(s?.otlpHeaders, { authorization: 'Bearer a', 'x-a': '2' }, 'the traces-specific header wins');
  t.equal(s?.sampler, 'parentbased_traceidratio');
  t.equal(s?.samplerRatio, 0.25);
  t.same(s?.batch, { scheduledDelayMillis: 100, maxExportBatchSize: 64 });
  t.equal(
    tracingSettingsFrom({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs' }, 'svc')?.resourceAttributes['service.name'],
    'from-attrs',
    'service.name in OTEL_RESOURCE_ATTRIBUTES beats the default',
  );
});

t.test('bad values stop startup, every problem listed', async (t) => {
  let caught: unknown;
  try {
    tracingSettingsFrom(
      {
        OTEL_TRACES_EXPORTER: 'otlp,zipkin',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_TRACES_SAMPLER: 'sometimes',
        OTEL_BSP_SCHEDULE_DELAY: 'soon',
      },
      'svc',
    );
  } catch (err) {
    caught = err;
  }
  t.type(caught, ConfigError);
  const problems = (caught as ConfigError).problems;
  t.equal(problems.length, 5, problems.join('\n'));
  t.match(problems.join('\n'), /zipkin[\s\S]*collector:4318[\s\S]*grpc[\s\S]*sometimes[\s\S]*OTEL_BSP_SCHEDULE_DELAY/);
  t.throws(() => tracingSettingsFrom({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' }, 'svc'), ConfigError);
  t.ok(tracingSettingsFrom({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }, 'svc'), 'http/protobuf is accepted');
});

t.test('key=value lists read as the OpenTelemetry SDK reads them (without loading it)', async (t) => {
  t.same(parseKeyPairs(undefined), {});
  t.same(parseKeyPairs('a=1, b = two ,c=%20x%2C;prop=1,=nokey,novalue=,bad=%E0%A4%A,d'), { a: '1', b: 'two', c: ' x,' });
  t.same(parseKeyPairs('k=1,k=2'), { k: '2' }, 'the last one wins');
  // The same answers as @opentelemetry/core's parseKeyPairsIntoRecord, on strings made of the characters that matter.
  const text = fc.stringMatching(/^[a-z=,;% 2C0E]{0,30}$/);
  fc.assert(
    fc.property(text, (s) => isDeepStrictEqual(parseKeyPairs(s), parseKeyPairsIntoRecord(s))),
    { numRuns: 500 },
  );
});
