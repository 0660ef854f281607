import { loadConfig, type TracingSettings } from '../../src/config/index.js';

/**
 * The tracing settings loadConfig reads from `env`'s `OTEL_*` variables for a process whose
 * default service.name is `defaultServiceName` (what src/cli/main.ts asks for a gateway or worker);
 * undefined when they leave tracing off. Throws ConfigError for bad values, as startup does.
 */
export function tracingFrom(env: Readonly<Record<string, string | undefined>>, defaultServiceName: string): TracingSettings | undefined {
  return loadConfig({ ...env }, undefined, { tracing: { defaultServiceName } }).tracing;
}
