import { context, diag, DiagLogLevel, propagation, trace } from '@opentelemetry/api';
import type { Sampler, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { SamplerName, TracingSettings } from '../config/index.js';
import type { Logger } from './logger.js';
import { diagLogger, loggableUrl } from './otel-diag.js';

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
 * Starts the OpenTelemetry SDK as the standard `OTEL_*` variables ask, read by loadConfig into
 * `Config.tracing` (src/config/tracing.ts: `OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`,
 * `_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`,
 * `OTEL_BSP_*`). `settings` undefined means tracing is off: no SDK is loaded at all and the API's
 * no-op tracer stays in place. Only traces: no metric or log exporter is started.
 * With `opts.logger`, says once that tracing is on and where spans go, and logs OpenTelemetry's
 * warnings and errors (a failed export) there, at most one a minute (otel-diag.ts).
 */
export async function startTracing(settings: TracingSettings | undefined, opts: { serviceVersion?: string; logger?: Logger } = {}): Promise<Tracing> {
  if (!settings) return NO_TRACING;
  const { logger } = opts;
  if (logger) {
    diag.setLogger(diagLogger(logger), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
    const otlpUrl = settings.exporters.includes('otlp') ? loggableUrl(settings.otlpUrl) : undefined;
    logger.info({ exporters: settings.exporters, otlpUrl, sampler: settings.sampler, serviceName: settings.resourceAttributes['service.name'] }, 'tracing on');
    // Jaeger's and the Collector's OTLP/gRPC port: asyncfn speaks OTLP/HTTP, whose port is 4318.
    if (otlpUrl !== undefined && URL.canParse(otlpUrl) && new URL(otlpUrl).port === '4317') {
      logger.warn({ otlpUrl }, 'spans are exported as OTLP/HTTP, but port 4317 is OTLP/gRPC: the collector will refuse them (its OTLP/HTTP port is 4318)');
    }
  }
  const [base, { OTLPTraceExporter }] = await Promise.all([import('@opentelemetry/sdk-trace-base'), import('@opentelemetry/exporter-trace-otlp-http')]);
  const processors: SpanProcessor[] = settings.exporters.map((name) =>
    name === 'otlp'
      ? new base.BatchSpanProcessor(new OTLPTraceExporter({ url: settings.otlpUrl, headers: { ...settings.otlpHeaders } }), settings.batch)
      : new base.SimpleSpanProcessor(new base.ConsoleSpanExporter()),
  );
  const attributes = { ...settings.resourceAttributes };
  if (opts.serviceVersion !== undefined) attributes['service.version'] ??= opts.serviceVersion;
  const sdk = await startSdk(processors, samplerFor(base, settings.sampler, settings.samplerRatio), attributes, true);
  if (!logger) return sdk;
  let stopping: Promise<void> | undefined;
  // The last export's failure, at shutdown, is still logged; then the logger is let go.
  return { shutdown: () => (stopping ??= sdk.shutdown().finally(() => diag.disable())) };
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
 * Exported for the tests' in-memory tracing (test/helpers/tracing.ts).
 */
export async function startSdk(spanProcessors: SpanProcessor[], sampler: Sampler, attributes: Record<string, string>, detectResources: boolean): Promise<Tracing> {
  const [{ NodeSDK }, resources, core] = await Promise.all([import('@opentelemetry/sdk-node'), import('@opentelemetry/resources'), import('@opentelemetry/core')]);
  const sdk = new NodeSDK({
    resource: resources.resourceFromAttributes(attributes),
    autoDetectResources: detectResources,
    // Not envDetector: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME come from Config.tracing, already applied.
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
