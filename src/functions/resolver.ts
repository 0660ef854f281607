/**
 * The function registry port: how a function name from a route becomes the URL the worker (or the
 * sync proxy) calls, plus the annotations that tune its queue and retries.
 *
 * Three registries implement it: a static file (static-file.ts), a URL template such as
 * Kubernetes DNS (url-template.ts), and an OpenFaaS gateway (openfaas-gateway.ts).
 */
import { InvalidFunctionNameError, PathRefusedError } from '../errors.js';
import { confinePathSuffix } from './path-suffix.js';

/** A function as named in a route: `name` or `name.namespace`, split and validated. */
export interface FunctionRef {
  readonly name: string;
  readonly namespace: string;
}

/** A function the registry knows how to call. */
export interface ResolvedFunction {
  readonly name: string;
  readonly namespace: string;
  /** base URL; the invocation's path suffix is appended */
  readonly url: string;
  /** OpenFaaS-style annotations, e.g. `com.openfaas.queue`, `com.openfaas.retry.attempts`. */
  readonly annotations: Readonly<Record<string, string>>;
}

/** Looks functions up. Implementations never throw for an unknown function; they return undefined. */
export interface FunctionResolver {
  /** The function, or undefined when the registry knows it does not exist. Registries that cannot tell (URL template) always resolve. */
  resolve(ref: FunctionRef): Promise<ResolvedFunction | undefined>;
  /**
   * The function when the registry has it at hand (a listed one, a fresh cache entry, a template's);
   * undefined when `resolve` must be asked (not known here, or not known to exist). For the paths
   * every invocation takes: no promise and no turn of the event loop when nothing is waited on.
   */
  resolveNow?(ref: FunctionRef): ResolvedFunction | undefined;
  /**
   * The known functions, for /system/functions: those of `namespace` when given (OpenFaaS's
   * `?namespace=`), else every one the registry lists; undefined when the registry cannot list.
   */
  list(namespace?: string): Promise<readonly ResolvedFunction[] | undefined>;
}

/**
 * The slice of the validated config this folder needs. src/config builds an object of exactly
 * this shape; it is declared here so that src/functions does not depend on src/config.
 */
export interface FunctionsConfig {
  /** Which registry to use. */
  mode: 'file' | 'template' | 'gateway';
  /** Path of the YAML/JSON functions file; required when mode is 'file'. */
  file?: string;
  /** URL with `{name}` and `{namespace}` placeholders, for mode 'template'. */
  urlTemplate: string;
  /** Namespace of a function named without `.namespace` (OpenFaaS: `openfaas-fn`). */
  defaultNamespace: string;
  /** Base URL of the OpenFaaS gateway, for mode 'gateway' (e.g. `http://gateway.openfaas:8080`). */
  gatewayUrl: string;
}

/** DNS-1123 label, as Kubernetes (and so faas-netes) requires for names and namespaces. */
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** True when `s` is a DNS-1123 label: lowercase alphanumerics and '-', 1–63 chars, alphanumeric at both ends. */
export function isDnsLabel(s: string): boolean {
  return DNS_1123_LABEL.test(s);
}

/**
 * "name" or "name.namespace" (OpenFaaS form). name and namespace are DNS-1123 labels (lowercase
 * alnum and '-', 1–63 chars, start/end alnum). Throws InvalidFunctionNameError otherwise.
 *
 * OpenFaaS splits at the last dot; since a label cannot contain a dot, splitting at the first and
 * rejecting a second gives the same answer for every valid name and a clear error for "a.b.c".
 */
export function parseFunctionRef(raw: string, defaultNamespace: string): FunctionRef {
  const dot = raw.indexOf('.');
  const name = dot === -1 ? raw : raw.slice(0, dot);
  const namespace = dot === -1 ? defaultNamespace : raw.slice(dot + 1);
  if (!isDnsLabel(name) || !isDnsLabel(namespace)) throw new InvalidFunctionNameError(raw);
  return { name, namespace };
}

/** The key registries use for a function: the OpenFaaS `name.namespace` form. */
export function functionKey(ref: FunctionRef): string {
  return `${ref.name}.${ref.namespace}`;
}

/**
 * Joins the base URL, a path suffix ("" or "/a/b", already percent-encoded as received) and a raw
 * query string ("" or "a=1&b=2", without '?'). Base URL may have its own path (e.g.
 * http://h:9000/echo → http://h:9000/echo/a/b?a=1). Never produces a double slash at the join.
 *
 * Strings are joined rather than resolved with `new URL(suffix, base)`, which would climb out of
 * the base path on `..`. undici still parses the result (WHATWG), which resolves dot segments and
 * re-encodes a few characters: the suffix is confined first, so that parse can only re-encode.
 * A query the base URL already carries (e.g. an API key) is kept, and the caller's follows it.
 *
 * Throws PathRefusedError when the suffix could leave the base URL (see confinePathSuffix), and,
 * as a second line of defence, when the joined URL, read the way the HTTP client reads it, is not
 * on the base URL's origin under its path.
 */
export function functionUrl(fn: ResolvedFunction, pathSuffix: string, query: string): string {
  // A fragment is never sent over HTTP; drop it so it cannot swallow the suffix.
  const hash = fn.url.indexOf('#');
  const base = hash === -1 ? fn.url : fn.url.slice(0, hash);
  const q = base.indexOf('?');
  const basePath = q === -1 ? base : base.slice(0, q);
  const baseQuery = q === -1 ? '' : base.slice(q + 1);

  let path = basePath;
  if (pathSuffix !== '') {
    const suffix = confinePathSuffix(pathSuffix.startsWith('/') ? pathSuffix : `/${pathSuffix}`);
    path = basePath.replace(/\/+$/, '') + suffix;
  }
  // OpenFaaS queue-worker (makeFunctionURL) tolerates a leading '?' on the stored query; so do we.
  const callerQuery = query.startsWith('?') ? query.slice(1) : query;
  const fullQuery = [baseQuery, callerQuery].filter((s) => s !== '').join('&');
  const url = fullQuery === '' ? path : `${path}?${fullQuery}`;
  if (pathSuffix !== '') assertUnderBase(basePath, url);
  return url;
}

/**
 * Whether `url`, parsed as undici parses it (WHATWG: dot segments resolved, `\\` read as `/`), is
 * on `base`'s origin and at or under its path (trailing slashes of the base path ignored).
 * False when either does not parse.
 */
export function isUnderBaseUrl(base: string, url: string): boolean {
  if (!URL.canParse(base) || !URL.canParse(url)) return false;
  const baseUrl = new URL(base);
  const joined = new URL(url);
  const root = baseUrl.pathname.replace(/\/+$/, '');
  return joined.origin === baseUrl.origin && (joined.pathname === root || joined.pathname.startsWith(`${root}/`));
}

/** Belt and braces behind confinePathSuffix: the joined URL must still be under the base. */
function assertUnderBase(basePath: string, url: string): void {
  if (!isUnderBaseUrl(basePath, url)) throw new PathRefusedError("the path would leave the function's URL");
}

/** Result of {@link normalizeFunctionUrl}: the canonical URL, or a one-line problem. */
export type UrlCheck = { readonly ok: true; readonly url: string } | { readonly ok: false; readonly problem: string };

/**
 * Checks that a function's base URL is an absolute http(s) URL and returns it in WHATWG form
 * (so `http:/h` and `http://h` both become `http://h/`). Shared by every registry so they accept
 * and reject the same things.
 */
export function normalizeFunctionUrl(url: string): UrlCheck {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, problem: `"${url}" is not a valid URL` };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return { ok: false, problem: `"${url}" must use http or https, not ${parsed.protocol.slice(0, -1)}` };
  }
  parsed.hash = '';
  return { ok: true, url: parsed.href };
}
