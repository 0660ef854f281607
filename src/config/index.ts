/**
 * Public API of src/config: the one place asyncfn turns OpenFaaS-style variables (environment
 * plus an optional YAML file) into a validated, deeply frozen Config. Only src/cli calls
 * loadConfig, passing process.env; every other module receives the slice of Config it uses,
 * and unit tests build one with testConfig.
 *
 * This index loads the validators (zod, the schemas, yaml). A gateway or a worker never does: its
 * settings are read in a child process (src/cli/settings.ts), and the helpers its modules use at
 * run time are imported from their own modules (duration.ts, size.ts, secrets.ts, queue-name.ts),
 * which load none of them (test/integration/loaded-modules.test.ts).
 */
export { parseDurationMs } from './duration.js';
export { loadConfig, testConfig } from './load.js';
export type {
  CallbackConfig,
  ConsoleConfig,
  Config,
  DeadLetterConfig,
  DeepPartial,
  FunctionsConfig,
  GatewayConfig,
  LogConfig,
  NatsAuthConfig,
  NatsConfig,
  NatsTlsConfig,
  QueueConfig,
  QueueServed,
  RecordsConfig,
  RetryConfig,
  RuntimeConfig,
  SecurityConfig,
  WorkerConfig,
} from './schema.js';
export { parseSizeBytes } from './size.js';
export { QUEUE_NAME } from './queue-name.js';
export { parseKeyPairs, SAMPLERS, TRACING_VARIABLE_NAMES, tracingSettingsFrom } from './tracing.js';
export type { SamplerName, TraceExporterName, TracingSettings } from './tracing.js';
export { readMountedSecret, readMountedSecretLines, readSecretFile } from './secrets.js';
export type { LoadOptions } from './load.js';
export { OPENFAAS_ALIASES, OPENFAAS_UNSUPPORTED } from './openfaas-names.js';
export { unknownVariableWarnings } from './variable-warnings.js';
