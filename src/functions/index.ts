/**
 * Public API of src/functions: resolving a function name to its URL and annotations.
 * Only src/cli wires a resolver (createResolver); the gateway and the worker receive it as a
 * FunctionResolver and never know which registry is behind it.
 *
 * The functions file's parser and validator (static-file.ts: yaml, zod) are not exported here:
 * a gateway or worker gets its table already validated (src/cli/settings.ts) and never loads
 * them. Who parses a file imports static-file.ts.
 */
import { ConfigError } from '../errors.js';
import type { OpenFaaSGatewayOptions } from './openfaas-gateway.js';
import { tableResolver } from './listed.js';
import type { FunctionResolver, FunctionsConfig } from './resolver.js';
import { templateResolver } from './url-template.js';

export {
  functionKey,
  functionUrl,
  isDnsLabel,
  isUnderBaseUrl,
  normalizeFunctionUrl,
  parseFunctionRef,
  type FunctionRef,
  type FunctionResolver,
  type FunctionsConfig,
  type ResolvedFunction,
  type UrlCheck,
} from './resolver.js';
export { confinePathSuffix, MAX_DECODE_ROUNDS, pathSuffixProblem } from './path-suffix.js';
export { listedResolver, tableResolver, UNLISTED_FUNCTIONS, type FunctionsTable, type UnlistedFunctions } from './listed.js';
export { DEFAULT_URL_TEMPLATE, expandUrlTemplate, templateResolver } from './url-template.js';
export { annotatedTimeout, callTimeout, parseTimeoutMs, TIMEOUT_ANNOTATIONS, TIMEOUT_HEADER, type CallTimeout } from './timeout.js';

/** What the wiring gives a resolver backed by an OpenFaaS gateway: its credentials, and who hears of failed lookups. */
export type GatewayResolverExtras = Pick<OpenFaaSGatewayOptions, 'credentials' | 'onLookupFailed'>;

/**
 * Builds the resolver the config asks for: 'file' reads and validates `cfg.file` now (so a bad
 * file stops startup; its parser is loaded only then), 'template' checks the template, 'gateway'
 * asks the OpenFaaS gateway at `cfg.gatewayUrl` on demand (its module, which loads undici's request
 * API, only then). Throws ConfigError.
 */
export async function createResolver(cfg: FunctionsConfig, gateway: GatewayResolverExtras = {}): Promise<FunctionResolver> {
  switch (cfg.mode) {
    case 'file':
      if (cfg.file === undefined || cfg.file === '') {
        throw new ConfigError(['a functions file is required when the functions mode is "file"']);
      }
      return tableResolver(await (await import('./static-file.js')).loadFunctionsTable(cfg.file, cfg.defaultNamespace, cfg.urlTemplate), cfg.urlTemplate);
    case 'template':
      return templateResolver(cfg.urlTemplate);
    case 'gateway':
      return (await import('./openfaas-gateway.js')).openfaasGatewayResolver({ gatewayUrl: cfg.gatewayUrl, defaultNamespace: cfg.defaultNamespace, ...gateway });
  }
}
