import { formatRate, parseRate, type Rate } from '../flow/rate.js';

/**
 * A function's flow-control annotations, read where the function is resolved, as annotations.ts
 * reads the retry overrides: rate limits and concurrency limits, for the function as a whole and
 * per value of the caller's `X-Concurrency-Key` header. A bad value is left out with a one-line
 * warning, so one function's typo never stops the worker. Enforcing them is the worker's job.
 */

/** The annotations read here. */
export const FLOW_ANNOTATIONS = Object.freeze({
  /** Tokens per period for the whole function, e.g. "120/1m" (src/flow/rate.ts parseRate). */
  rateLimit: 'com.asyncfn.rate_limit',
  /** The same, per value of `X-Concurrency-Key`. */
  keyRateLimit: 'com.asyncfn.key_rate_limit',
  /** Invocations of the function running at once, across replicas (asyncfn's name; wins over OpenFaaS's). */
  maxInflight: 'com.asyncfn.max_inflight',
  /** The same, under the OpenFaaS name. */
  openfaasMaxInflight: 'com.openfaas.max_inflight',
  /** Invocations running at once per value of `X-Concurrency-Key`. */
  keyMaxInflight: 'com.asyncfn.key_max_inflight',
} as const);

/** The caller's header naming the flow-control key (per-key rate and concurrency limits). */
export const CONCURRENCY_KEY_HEADER = 'x-concurrency-key';

/** A function's flow-control limits; an absent field means no limit of that kind. */
export interface FunctionFlow {
  /** The function's rate limit. */
  readonly rate?: Rate;
  /** The rate limit of each `X-Concurrency-Key` value. */
  readonly keyRate?: Rate;
  /** The function's concurrency limit: an integer ≥ 1. */
  readonly maxInflight?: number;
  /** The concurrency limit of each `X-Concurrency-Key` value: an integer ≥ 1. */
  readonly keyMaxInflight?: number;
  /** One line per annotation that was ignored, for the worker's log. */
  readonly warnings: readonly string[];
}

const NONE: FunctionFlow = Object.freeze({ warnings: Object.freeze([]) });
const NAMES: readonly string[] = Object.values(FLOW_ANNOTATIONS);

/** A positive integer in decimal, or undefined. */
function positiveInteger(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return value >= 1 && Number.isSafeInteger(value) ? value : undefined;
}

/**
 * The limits `annotations` set. Allocates nothing for a function that sets none of them (most).
 * With both max_inflight names set to different values, `com.asyncfn.max_inflight` wins, with a
 * warning.
 */
export function functionFlowOf(annotations: Readonly<Record<string, string>>): FunctionFlow {
  if (!NAMES.some((name) => annotations[name] !== undefined)) return NONE;
  const warnings: string[] = [];

  const rate = (name: string): Rate | undefined => {
    const value = annotations[name];
    if (value === undefined) return undefined;
    const parsed = parseRate(value);
    if (parsed.ok) return parsed.rate;
    warnings.push(`${name} ignored: ${parsed.problem}`);
    return undefined;
  };
  const limit = (name: string): number | undefined => {
    const value = annotations[name];
    if (value === undefined) return undefined;
    const parsed = positiveInteger(value);
    if (parsed === undefined) warnings.push(`${name}=${JSON.stringify(value)} ignored: not an integer ≥ 1`);
    return parsed;
  };

  const own = limit(FLOW_ANNOTATIONS.maxInflight);
  const openfaas = limit(FLOW_ANNOTATIONS.openfaasMaxInflight);
  if (own !== undefined && openfaas !== undefined && own !== openfaas) {
    warnings.push(`${FLOW_ANNOTATIONS.maxInflight}=${own} and ${FLOW_ANNOTATIONS.openfaasMaxInflight}=${openfaas} differ; using ${own}`);
  }
  // Absent limits are left out rather than set to undefined, so a logged flow shows only what is set.
  const flow: { -readonly [K in keyof FunctionFlow]: FunctionFlow[K] } = { warnings };
  const rateLimit = rate(FLOW_ANNOTATIONS.rateLimit);
  if (rateLimit) flow.rate = rateLimit;
  const keyRateLimit = rate(FLOW_ANNOTATIONS.keyRateLimit);
  if (keyRateLimit) flow.keyRate = keyRateLimit;
  const maxInflight = own ?? openfaas;
  if (maxInflight !== undefined) flow.maxInflight = maxInflight;
  const keyMaxInflight = limit(FLOW_ANNOTATIONS.keyMaxInflight);
  if (keyMaxInflight !== undefined) flow.keyMaxInflight = keyMaxInflight;
  return Object.freeze(flow);
}

/**
 * {@link functionFlowOf}, remembered per annotations object: resolvers hand out the same frozen
 * annotations for a function until they look it up again, so each is parsed once.
 */
export function functionFlows(): (annotations: Readonly<Record<string, string>>) => FunctionFlow {
  const known = new WeakMap<object, FunctionFlow>();
  return (annotations) => {
    let flow = known.get(annotations);
    if (flow === undefined) {
      flow = functionFlowOf(annotations);
      known.set(annotations, flow);
    }
    return flow;
  };
}

/** The limits as one log-friendly object, e.g. `{ rate: "120/1m", maxInflight: 3 }`. */
export function describeFlow(flow: FunctionFlow): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (flow.rate) out.rate = formatRate(flow.rate);
  if (flow.keyRate) out.keyRate = formatRate(flow.keyRate);
  if (flow.maxInflight !== undefined) out.maxInflight = flow.maxInflight;
  if (flow.keyMaxInflight !== undefined) out.keyMaxInflight = flow.keyMaxInflight;
  return out;
}
