import { z } from 'zod';
import { ConfigError } from '../errors.js';

// No @opentelemetry/* import here: this module is read by every process, tracing or not, and the
// SDK's packages (even @opentelemetry/core, ~10 MiB of RSS) are loaded only when tracing is on.

/** `OTEL_TRACES_SAMPLER` values (the OpenTelemetry SDK configuration spec). */
export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export const TRACE_EXPORTERS = ['otlp', 'console'] as const;
export type TraceExporterName = (typeof TRACE_EXPORTERS)[number];

/**
 * The standard OpenTelemetry variables asyncfn reads (from the environment only, as every
 * OpenTelemetry SDK does; not from the config file). Each is read in {@link tracingSettingsFrom}.
 */
export const TRACING_VARIABLE_NAMES = [
  'OTEL_SDK_DISABLED',
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_EXPORT_TIMEOUT',
  'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
] as const;
type TracingVariable = (typeof TRACING_VARIABLE_NAMES)[number];

const keyValues = z.record(z.string(), z.string()).readonly();
const count = z.int().min(0).optional();

/** Tracing as the standard `OTEL_*` variables configure it; see {@link tracingSettingsFrom}. */
export const TracingSettingsSchema = z
  .strictObject({
    /** `OTEL_TRACES_EXPORTER`, deduplicated. Default ["otlp"] once an OTLP endpoint is set. */
    exporters: z.array(z.enum(TRACE_EXPORTERS)).readonly(),
    /** Where OTLP/HTTP spans are POSTed, the full URL including `/v1/traces`. Default "http://localhost:4318/v1/traces". */
    otlpUrl: z.string(),
    /** `OTEL_EXPORTER_OTLP_HEADERS` merged with `OTEL_EXPORTER_OTLP_TRACES_HEADERS`. */
    otlpHeaders: keyValues,
    /** `OTEL_RESOURCE_ATTRIBUTES`, with `service.name` settled. */
    resourceAttributes: keyValues,
    /** `OTEL_TRACES_SAMPLER`, lower-cased. Default "parentbased_always_on". */
    sampler: z.enum(SAMPLERS),
    /**
     * `OTEL_TRACES_SAMPLER_ARG` for the ratio samplers, [0, 1]; default 1. Only checked for those:
     * with another sampler the argument is unused, whatever it says (even NaN).
     */
    samplerRatio: z.number().or(z.nan()),
    /** `OTEL_BSP_*`: the batch span processor's limits, ms or spans; absent = the SDK's defaults. */
    batch: z.strictObject({ scheduledDelayMillis: count, exportTimeoutMillis: count, maxQueueSize: count, maxExportBatchSize: count }).readonly(),
  })
  .readonly();
export type TracingSettings = z.output<typeof TracingSettingsSchema>;

type Env = Readonly<Record<string, string | undefined>>;

const DEFAULT_OTLP_URL = 'http://localhost:4318/v1/traces';

/**
 * Reads the standard OpenTelemetry variables. Tracing is off (undefined) unless
 * `OTEL_TRACES_EXPORTER` names an exporter or an OTLP endpoint is set; `OTEL_TRACES_EXPORTER=none`
 * and `OTEL_SDK_DISABLED=true` turn it off. Spans are sent as OTLP/HTTP with JSON bodies, which
 * every OTLP/HTTP receiver (the Collector, Jaeger on port 4318) accepts. Throws
 * {@link ConfigError} listing every bad value.
 */
export function tracingSettingsFrom(env: Env, defaultServiceName: string): TracingSettings | undefined {
  const get = (name: TracingVariable): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  if (get('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;

  const problems: string[] = [];
  const tracesEndpoint = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const endpoint = get('OTEL_EXPORTER_OTLP_ENDPOINT');
  const named = (get('OTEL_TRACES_EXPORTER') ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  if (named.includes('none')) return undefined;
  if (named.length === 0 && tracesEndpoint === undefined && endpoint === undefined) return undefined;
  const exporters: TraceExporterName[] = [];
  for (const name of named.length > 0 ? named : ['otlp']) {
    if (name === 'otlp' || name === 'console') {
      if (!exporters.includes(name)) exporters.push(name);
    } else {
      problems.push(`OTEL_TRACES_EXPORTER: unsupported exporter "${name}" (otlp, console or none)`);
    }
  }

  // The signal-specific endpoint is used as is; the generic one gets the signal's path (OTLP spec).
  const otlpUrl = tracesEndpoint ?? (endpoint === undefined ? DEFAULT_OTLP_URL : `${endpoint.replace(/\/+$/, '')}/v1/traces`);
  if (!/^https?:\/\//i.test(otlpUrl) || !URL.canParse(otlpUrl)) {
    problems.push(`${tracesEndpoint === undefined ? 'OTEL_EXPORTER_OTLP_ENDPOINT' : 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'}: "${otlpUrl}" is not an http(s) URL`);
  }
  const protocol = get('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? get('OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol !== 'http/json' && protocol !== 'http/protobuf') {
    problems.push(`OTEL_EXPORTER_OTLP_PROTOCOL: "${protocol}" is not supported; asyncfn exports OTLP over HTTP (port 4318), not gRPC`);
  }

  const samplerText = (get('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  const sampler = SAMPLERS.find((s) => s === samplerText);
  if (!sampler) problems.push(`OTEL_TRACES_SAMPLER: unsupported sampler "${samplerText}" (${SAMPLERS.join(', ')})`);
  const ratioText = get('OTEL_TRACES_SAMPLER_ARG');
  const samplerRatio = ratioText === undefined ? 1 : Number(ratioText);
  if (sampler?.endsWith('traceidratio') && !(samplerRatio >= 0 && samplerRatio <= 1)) {
    problems.push(`OTEL_TRACES_SAMPLER_ARG: "${ratioText}" is not a ratio between 0 and 1`);
  }

  const count = (name: TracingVariable, min: number): number | undefined => {
    const text = get(name);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < min) {
      problems.push(`${name}: "${text}" is not an integer ≥ ${min}`);
      return undefined;
    }
    return value;
  };
  const batch = {
    scheduledDelayMillis: count('OTEL_BSP_SCHEDULE_DELAY', 0),
    exportTimeoutMillis: count('OTEL_BSP_EXPORT_TIMEOUT', 0),
    maxQueueSize: count('OTEL_BSP_MAX_QUEUE_SIZE', 1),
    maxExportBatchSize: count('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1),
  };
  if (problems.length > 0) throw new ConfigError(problems);

  const resourceAttributes = parseKeyPairs(get('OTEL_RESOURCE_ATTRIBUTES'));
  // Precedence of the SDK spec: OTEL_SERVICE_NAME, then service.name in OTEL_RESOURCE_ATTRIBUTES.
  resourceAttributes['service.name'] = get('OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? defaultServiceName;
  return {
    exporters,
    otlpUrl,
    otlpHeaders: {
      ...parseKeyPairs(get('OTEL_EXPORTER_OTLP_HEADERS')),
      ...parseKeyPairs(get('OTEL_EXPORTER_OTLP_TRACES_HEADERS')),
    },
    resourceAttributes,
    sampler: sampler!,
    samplerRatio,
    batch: Object.fromEntries(Object.entries(batch).filter(([, v]) => v !== undefined)),
  };
}

/**
 * `key1=value1,key2=value2` as the OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS
 * variables write it, percent-decoded; `;properties` after a value are dropped, and entries
 * without a key or a value, or that do not decode, are skipped. The same reading as
 * `parseKeyPairsIntoRecord` of `@opentelemetry/core`, without loading it.
 */
export function parseKeyPairs(text: string | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of text?.split(',') ?? []) {
    const properties = entry.indexOf(';');
    const pair = properties === -1 ? entry : entry.slice(0, properties);
    const separator = pair.indexOf('=');
    if (separator <= 0) continue;
    const rawKey = pair.slice(0, separator).trim();
    const rawValue = pair.slice(separator + 1).trim();
    if (rawKey === '' || rawValue === '') continue;
    try {
      const value = decodeURIComponent(rawValue);
      if (value !== '') result[decodeURIComponent(rawKey)] = value;
    } catch {
      // Malformed percent-encoding: skipped, as the SDK does.
    }
  }
  return result;
}
