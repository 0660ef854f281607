import { EventEmitter } from 'node:events';
import { context, propagation, trace } from '@opentelemetry/api';
import type { InMemorySpanExporter, ReadableSpan, Sampler, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { tracingSettingsFrom, type SamplerName } from './tracing-config.js';

export { traceIdOf } from './spans.js';

/**
 * Tracing's lifecycle: one OpenTelemetry trace per invocation (gateway request → publish →
 * each attempt's processing → function call → callback), exported over OTLP/HTTP. The spans
 * themselves are made in the routes, the publisher, the function call and the callback with
 * the helpers of `spans.ts`.
 */
export interface Tracing {
  /** Exports what is still buffered, stops the SDK and unregisters it from the OpenTelemetry API. */
  shutdown(): Promise<void>;
}

const NO_TRACING: Tracing = Object.freeze({ shutdown: async () => undefined });

/**
 * Starts the OpenTelemetry SDK as the standard variables in `env` ask (see `tracingSettingsFrom`:
 * `OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_HEADERS`, `OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`). When tracing is off no
 * SDK is loaded at all and the API's no-op tracer stays in place. Only traces: no metric or log
 * exporter is started. Throws ConfigError for bad values.
 */
export async function startTracing(
  env: Readonly<Record<string, string | undefined>>,
  serviceName: string,
  opts: { serviceVersion?: string } = {},
): Promise<Tracing> {
  const settings = tracingSettingsFrom(env, serviceName);
  if (!settings) return NO_TRACING;
  const [base, { OTLPTraceExporter }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
  ]);
  const processors: SpanProcessor[] = settings.exporters.map((name) =>
    name === 'otlp'
      ? new base.BatchSpanProcessor(new OTLPTraceExporter({ url: settings.otlpUrl, headers: { ...settings.otlpHeaders } }), settings.batch)
      : new base.SimpleSpanProcessor(new base.ConsoleSpanExporter()),
  );
  const attributes = { ...settings.resourceAttributes };
  if (opts.serviceVersion !== undefined) attributes['service.version'] ??= opts.serviceVersion;
  return startSdk(processors, samplerFor(base, settings.sampler, settings.samplerRatio), attributes, true);
}

type SdkTraceBase = typeof import('@opentelemetry/sdk-trace-base');

function samplerFor(base: SdkTraceBase, name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new base.AlwaysOnSampler();
    case 'always_off':
      return new base.AlwaysOffSampler();
    case 'traceidratio':
      return new base.TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new base.ParentBasedSampler({ root: new base.TraceIdRatioBasedSampler(ratio) });
  }
}

/**
 * NodeSDK with the given span processors, W3C trace context (and baggage) propagation and the
 * AsyncLocalStorage context manager (NodeSDK's default). `metricReaders: []` and
 * `logRecordProcessors: []` keep it from starting OTLP metric and log exporters of its own.
 */
async function startSdk(spanProcessors: SpanProcessor[], sampler: Sampler, attributes: Record<string, string>, detectResources: boolean): Promise<Tracing> {
  const [{ NodeSDK }, resources, core] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  const sdk = new NodeSDK({
    resource: resources.resourceFromAttributes(attributes),
    autoDetectResources: detectResources,
    // Not envDetector: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME come from `env`, already applied.
    resourceDetectors: [resources.hostDetector, resources.processDetector],
    spanProcessors,
    sampler,
    textMapPropagator: new core.CompositePropagator({
      propagators: [new core.W3CTraceContextPropagator(), new core.W3CBaggagePropagator()],
    }),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  let stopping: Promise<void> | undefined;
  return {
    shutdown: () =>
      (stopping ??= sdk.shutdown().finally(() => {
        // Unregister, so that a later start (another test) installs its own provider.
        trace.disable();
        propagation.disable();
        context.disable();
      })),
  };
}

/** Tracing into memory, for tests: every span, sampled, exported as soon as it ends. */
export interface InMemoryTracing extends Tracing {
  readonly exporter: InMemorySpanExporter;
  /** Ended spans so far, in the order they ended (still there after shutdown). */
  spans(): ReadableSpan[];
  /** Resolves with the ended spans once `condition` holds for them; rejects after `timeoutMs`. */
  waitForSpans(condition: (spans: readonly ReadableSpan[]) => boolean, what: string, timeoutMs?: number): Promise<ReadableSpan[]>;
}

/**
 * Installs tracing into an InMemorySpanExporter (SimpleSpanProcessor, always-on sampling, W3C
 * propagation, AsyncLocalStorage context), without any environment variable. Call `shutdown()`
 * in the test's teardown.
 */
export async function installInMemoryTracing(serviceName = 'asyncfn-test'): Promise<InMemoryTracing> {
  const base = await import('@opentelemetry/sdk-trace-base');
  const exported = new EventEmitter();
  // Kept here too: the exporter forgets its spans when shut down, and tests read them after.
  const ended: ReadableSpan[] = [];
  const exporter = new (class extends base.InMemorySpanExporter {
    override export(spans: ReadableSpan[], done: Parameters<InMemorySpanExporter['export']>[1]): void {
      super.export(spans, done);
      ended.push(...spans);
      exported.emit('export');
    }
  })();
  const tracing = await startSdk([new base.SimpleSpanProcessor(exporter)], new base.AlwaysOnSampler(), { 'service.name': serviceName }, false);
  const spans = (): ReadableSpan[] => [...ended];
  return {
    exporter,
    spans,
    shutdown: () => tracing.shutdown(),
    waitForSpans: (condition, what, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (!condition(spans())) return false;
          cleanup();
          resolve(spans());
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for spans: ${what} (have: ${spans().map((s) => s.name).join(', ')})`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          exported.off('export', check);
        };
        exported.on('export', check);
        check();
      }),
  };
}
