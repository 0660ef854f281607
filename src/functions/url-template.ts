/**
 * A registry that computes the URL from the name, as OpenFaaS's queue-worker does when
 * `gateway_invoke` is false (`http://<name><function_suffix>:8080`, where the suffix is
 * typically `.openfaas-fn.svc.cluster.local`). It cannot tell whether a function exists, so it
 * always resolves and cannot list; a missing function shows up as a failed call, like in OpenFaaS.
 */
import { ConfigError } from '../errors.js';
import { normalizeFunctionUrl, type FunctionRef, type FunctionResolver, type ResolvedFunction } from './resolver.js';

/** Kubernetes service DNS, the address faas-netes gives every function. */
export const DEFAULT_URL_TEMPLATE = 'http://{name}.{namespace}.svc.cluster.local:8080';

const NO_ANNOTATIONS: Readonly<Record<string, string>> = Object.freeze({});

/** Fills `{name}` and `{namespace}` (every occurrence) in a URL template. */
export function expandUrlTemplate(template: string, ref: FunctionRef): string {
  // Names and namespaces are DNS-1123 labels, so they need no escaping in a host or a path.
  return template.replaceAll('{name}', ref.name).replaceAll('{namespace}', ref.namespace);
}

/**
 * A resolver that builds every function's URL from `urlTemplate` (default
 * {@link DEFAULT_URL_TEMPLATE}). Annotations are always empty.
 * Throws ConfigError if the template lacks `{name}` or does not expand to an http(s) URL.
 */
export function templateResolver(urlTemplate: string = DEFAULT_URL_TEMPLATE): FunctionResolver {
  checkTemplate(urlTemplate);
  const build = (ref: FunctionRef): ResolvedFunction => {
    const checked = normalizeFunctionUrl(expandUrlTemplate(urlTemplate, ref));
    // checkTemplate expanded a sample name; real names are labels too, so this cannot fail.
    const url = checked.ok ? checked.url : expandUrlTemplate(urlTemplate, ref);
    return Object.freeze({ name: ref.name, namespace: ref.namespace, url, annotations: NO_ANNOTATIONS });
  };
  return {
    resolve: async (ref) => build(ref),
    resolveNow: build,
    list: async () => undefined,
  };
}

/** Refuses a template at startup rather than failing every invocation later. */
function checkTemplate(urlTemplate: string): void {
  const problems: string[] = [];
  // Without {name} every function would share one URL: certainly a mistake.
  if (!urlTemplate.includes('{name}')) problems.push(`url template "${urlTemplate}" must contain {name}`);
  const leftover = expandUrlTemplate(urlTemplate, { name: 'n', namespace: 'ns' }).match(/\{[^}]*\}/);
  if (leftover) problems.push(`url template "${urlTemplate}" has an unknown placeholder ${leftover[0]}`);
  const checked = normalizeFunctionUrl(expandUrlTemplate(urlTemplate, { name: 'sample-fn', namespace: 'sample-ns' }));
  if (!checked.ok) problems.push(`url template: ${checked.problem}`);
  if (problems.length > 0) throw new ConfigError(problems);
}
