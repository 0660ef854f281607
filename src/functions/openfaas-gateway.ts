/**
 * A registry backed by an OpenFaaS gateway, for running asyncfn next to (or instead of) the
 * OpenFaaS queue-worker with `gateway_invoke=true`: functions are called through the gateway's
 * `/function/<name>.<namespace>` route, and their annotations are read from its
 * `GET /system/function/<name>?namespace=<ns>` endpoint (the provider's FunctionStatus).
 *
 * Answers are cached briefly because the gateway asks the provider (faas-netes → Kubernetes API)
 * on every call, and an invocation burst would otherwise hit it once per request.
 */
import { request, type Dispatcher } from 'undici';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { functionKey, type FunctionRef, type FunctionResolver, type ResolvedFunction } from './resolver.js';

/** Options of {@link openfaasGatewayResolver}. */
export interface OpenFaaSGatewayOptions {
  /**
   * Base URL of the OpenFaaS gateway, e.g. `http://gateway.openfaas:8080`. Credentials in the URL
   * (`http://admin:secret@gateway:8080`) are sent as basic auth to `/system/*`, which OpenFaaS
   * protects when `basic_auth` is on; they never appear in function URLs.
   */
  gatewayUrl: string;
  /** Namespace that list() asks for (OpenFaaS default: `openfaas-fn`). */
  defaultNamespace: string;
  /** Timeout of one lookup, in ms, connect to body. Default 5000. */
  timeoutMs?: number;
  /** How long a found / not-found answer is reused, in ms. Default 5000. */
  cacheTtlMs?: number;
  /** Clock for cache expiry, in ms. Default `Date.now`; tests pass their own. */
  now?: () => number;
  /** undici dispatcher for the lookups. Default: undici's global dispatcher. */
  dispatcher?: Dispatcher;
  /**
   * Basic credentials for `/system/*` when the URL carries none: OpenFaaS's own `basic-auth-user`
   * and `basic-auth-password` secrets, which its queue-worker is given too.
   */
  credentials?: { readonly user: string; readonly password: string };
  /** Told when the gateway could not answer and the function was resolved anyway. */
  onLookupFailed?: (ref: FunctionRef, reason: string) => void;
}

/** Cap on cached answers, so requests for random names cannot grow memory without bound. */
const MAX_CACHE_ENTRIES = 10_000;

/** The part of OpenFaaS's FunctionStatus we read; the provider sends more (image, replicas, …). */
const FunctionStatusSchema = z.looseObject({
  name: z.string(),
  namespace: z.string().optional(),
  // omitempty in OpenFaaS: absent when a function has none.
  annotations: z.record(z.string(), z.unknown()).nullish(),
});

interface CacheEntry {
  readonly value: ResolvedFunction | undefined;
  readonly expiresAtMs: number;
}

/** Keeps only string values: annotations are map[string]string in OpenFaaS. */
function stringAnnotations(raw: Record<string, unknown> | null | undefined): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw ?? {})) if (typeof v === 'string') out[k] = v;
  return Object.freeze(out);
}

function parseGatewayUrl(gatewayUrl: string, credentials: OpenFaaSGatewayOptions['credentials']): { base: string; headers: Record<string, string> } {
  let url: URL;
  try {
    url = new URL(gatewayUrl);
  } catch {
    throw new ConfigError([`gateway URL "${gatewayUrl}" is not a valid URL`]);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError([`gateway URL "${gatewayUrl}" must use http or https`]);
  }
  const headers: Record<string, string> = {};
  if (url.username !== '' || url.password !== '') {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    headers['authorization'] = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  } else if (credentials !== undefined) {
    headers['authorization'] = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
  }
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  return { base: url.href.replace(/\/+$/, ''), headers };
}

/**
 * A resolver that asks an OpenFaaS gateway. resolve(): 200 → the function with its annotations;
 * 404 → undefined; anything else (5xx, timeout, refused) → resolved anyway, because a gateway
 * hiccup must not turn into 404s for callers. Such a fallback is not cached; it reuses the last
 * known annotations if there are any (so the function keeps its queue), else none.
 * Throws ConfigError for a bad gateway URL.
 */
export function openfaasGatewayResolver(opts: OpenFaaSGatewayOptions): FunctionResolver {
  const { base, headers } = parseGatewayUrl(opts.gatewayUrl, opts.credentials);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const cacheTtlMs = opts.cacheTtlMs ?? 5000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, CacheEntry>();
  // Concurrent lookups of one name share a request instead of each asking the gateway.
  const inflight = new Map<string, Promise<ResolvedFunction | undefined>>();

  // OpenFaaS gateway_invoke: the gateway's /function route accepts name.namespace.
  const toResolved = (name: string, namespace: string, annotations: Readonly<Record<string, string>>) =>
    Object.freeze({ name, namespace, url: `${base}/function/${name}.${namespace}`, annotations });

  const get = (path: string) =>
    request(`${base}${path}`, {
      method: 'GET',
      headers: { accept: 'application/json', ...headers },
      signal: AbortSignal.timeout(timeoutMs),
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });

  function remember(key: string, value: ResolvedFunction | undefined): void {
    cache.delete(key); // re-insert so Map order stays oldest-first
    cache.set(key, { value, expiresAtMs: now() + cacheTtlMs });
    if (cache.size <= MAX_CACHE_ENTRIES) return;
    const t = now();
    for (const [k, e] of cache) if (e.expiresAtMs <= t) cache.delete(k);
    for (const k of cache.keys()) {
      if (cache.size <= MAX_CACHE_ENTRIES) break;
      cache.delete(k);
    }
  }

  async function lookup(ref: FunctionRef, key: string): Promise<ResolvedFunction | undefined> {
    let reason: string;
    try {
      const res = await get(`/system/function/${ref.name}?namespace=${ref.namespace}`);
      if (res.statusCode === 200) {
        const status = FunctionStatusSchema.safeParse(await res.body.json().catch(() => undefined));
        if (status.success) {
          const found = toResolved(ref.name, ref.namespace, stringAnnotations(status.data.annotations));
          remember(key, found);
          return found;
        }
        reason = 'gateway answered 200 with a body that is not a FunctionStatus';
      } else {
        await res.body.dump();
        if (res.statusCode === 404) {
          remember(key, undefined);
          return undefined;
        }
        reason =
          res.statusCode === 401 || res.statusCode === 403
            ? `gateway answered ${res.statusCode} to GET /system/function/${ref.name}: it needs the credentials of its basic auth (basic_auth=true and its basic-auth-user and basic-auth-password secrets under secret_mount_path, or http://user:password@ in gateway_url)`
            : `gateway answered ${res.statusCode}`;
      }
    } catch (err) {
      reason = `gateway unreachable: ${(err as Error).message}`;
    }
    opts.onLookupFailed?.(ref, reason);
    const stale = cache.get(key)?.value;
    return stale ?? toResolved(ref.name, ref.namespace, Object.freeze({}));
  }

  return {
    resolve(ref) {
      const key = functionKey(ref);
      const hit = cache.get(key);
      if (hit && hit.expiresAtMs > now()) return Promise.resolve(hit.value);
      const pending = inflight.get(key);
      if (pending) return pending;
      const p = lookup(ref, key).finally(() => inflight.delete(key));
      inflight.set(key, p);
      return p;
    },

    resolveNow(ref) {
      const hit = cache.get(functionKey(ref));
      return hit && hit.expiresAtMs > now() ? hit.value : undefined;
    },

    async list(namespace = opts.defaultNamespace) {
      try {
        const res = await get(`/system/functions?namespace=${encodeURIComponent(namespace)}`);
        if (res.statusCode !== 200) {
          await res.body.dump();
          return undefined;
        }
        const parsed = z.array(FunctionStatusSchema).safeParse(await res.body.json().catch(() => undefined));
        if (!parsed.success) return undefined;
        return Object.freeze(parsed.data.map((f) => toResolved(f.name, f.namespace || opts.defaultNamespace, stringAnnotations(f.annotations))));
      } catch {
        return undefined;
      }
    },
  };
}
