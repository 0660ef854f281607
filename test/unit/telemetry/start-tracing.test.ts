import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import t from 'tap';
import { contextFromHeaders, tracer } from '../../../src/telemetry/spans.js';
import { startTracing } from '../../../src/telemetry/tracing.js';
import { tracingFrom } from '../../helpers/tracing-config.js';

// An endpoint nothing listens on: these tests make no span that would be exported.
const OFFLINE = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' };
const SAMPLED_CALLER = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };

t.test('OTEL_TRACES_SAMPLER decides which spans record', async (t) => {
  const cases: Array<[Record<string, string>, recordsRoot: boolean, recordsUnderSampledParent: boolean]> = [
    [{}, true, true],
    [{ OTEL_TRACES_SAMPLER: 'always_off' }, false, false],
    [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }, false, false],
    [{ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, false, true],
    [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }, false, true],
  ];
  for (const [env, recordsRoot, recordsUnderSampledParent] of cases) {
    const tracing = await startTracing(tracingFrom({ ...OFFLINE, ...env }, 'svc'));
    // Not sampled, so never exported: only the propagator is needed for the parent.
    const root = tracer().startSpan('root', {}, ROOT_CONTEXT);
    const child = tracer().startSpan('child', {}, contextFromHeaders(SAMPLED_CALLER));
    t.equal(root.isRecording(), recordsRoot, `${JSON.stringify(env)}: root`);
    t.equal(child.isRecording(), recordsUnderSampledParent, `${JSON.stringify(env)}: under a sampled caller`);
    await tracing.shutdown();
    t.notOk(tracer().startSpan('after').isRecording(), 'shutdown unregisters the SDK');
    t.equal(trace.getSpan(contextFromHeaders(SAMPLED_CALLER)), undefined, 'and the propagator');
  }
});

t.test('bad OTEL_* values stop startup (loadConfig) instead of running without traces', async (t) => {
  t.throws(() => tracingFrom({ OTEL_TRACES_EXPORTER: 'jaeger' }, 'svc'), { code: 'ASYNCFN_ERR_CONFIG' });
});
