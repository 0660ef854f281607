import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { TRACING_VARIABLE_NAMES } from '../../src/config/tracing.js';
import { VARIABLE_NAMES } from '../../src/config/variables.js';
import { REPO_ROOT } from './repo-root.js';

/** Helpers of test/deploy that need no Kubernetes tooling (test/helpers/kustomize.ts has that). */

export { REPO_ROOT } from './repo-root.js';

/** The OTEL_* variables asyncfn's tracing reads (src/config/tracing.ts). */
export async function otelVariableNames(): Promise<string[]> {
  return [...TRACING_VARIABLE_NAMES];
}

/**
 * Whether asyncfn reads an environment variable of this name: the config loader's variables
 * (OpenFaaS names, NATS_URL), ASYNCFN_CONFIG (src/cli/main.ts) and the tracing's OTEL_* names;
 * or node and its C library do: NODE_OPTIONS, which the image sets and the gateway's Deployment
 * sets for itself, and glibc's MALLOC_ARENA_MAX, which the gateway's Deployment sets.
 */
export function acceptedVariable(name: string, otelNames: readonly string[]): boolean {
  return VARIABLE_NAMES.includes(name) || otelNames.includes(name) || ['ASYNCFN_CONFIG', 'NODE_OPTIONS', 'MALLOC_ARENA_MAX'].includes(name);
}

/**
 * The variables the gateway's Deployment sets for its process (deploy/kubernetes/base/gateway.yaml,
 * the container's `env`): its own `NODE_OPTIONS`, which replaces the image's, and `MALLOC_ARENA_MAX`.
 */
export function gatewayDeploymentEnv(): Record<string, string> {
  const manifest = parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy/kubernetes/base/gateway.yaml'), 'utf8'))
    .map((document) => document.toJS() as { kind?: string })
    .find((object) => object.kind === 'Deployment') as {
    spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } };
  };
  const env: Record<string, string> = {};
  for (const { name, value } of manifest.spec.template.spec.containers[0]?.env ?? []) if (value !== undefined) env[name] = value;
  return env;
}
