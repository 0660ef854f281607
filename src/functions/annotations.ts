import type { FunctionPolicy } from '../../actors/invocation.types.js';
import { parseRetryStatuses, type BackoffMode, type RetryPolicy } from '../../actors/retry.policy.js';
import { parseDurationMs } from '../config/duration.js';
import { annotatedTimeout } from './timeout.js';

/**
 * A function's annotations, read where the function is resolved: the `com.openfaas.retry.*`
 * overrides of OpenFaaS Pro, `com.asyncfn.store_result` and the call timeout (`com.asyncfn.timeout`
 * / `com.openfaas.timeout`, see timeout.ts) become a typed {@link FunctionPolicy} before the
 * function is called, with the config's one duration parser. The machine only applies the result;
 * actors/retry.policy.ts keeps the arithmetic.
 */

/** OpenFaaS Pro's per-function retry overrides. */
export const RETRY_ANNOTATIONS = Object.freeze({
  attempts: 'com.openfaas.retry.attempts',
  codes: 'com.openfaas.retry.codes',
  minWait: 'com.openfaas.retry.min_wait',
  maxWait: 'com.openfaas.retry.max_wait',
  backoff: 'com.openfaas.retry.backoff',
} as const);

/** Annotation with which a function asks for all its results to be kept. */
export const STORE_RESULT_ANNOTATION = 'com.asyncfn.store_result';

const RETRY_ANNOTATION_NAMES: readonly string[] = Object.values(RETRY_ANNOTATIONS);
const BACKOFF_MODES: readonly BackoffMode[] = ['exponential', 'full', 'equal'];
const DURATION_EXPECTED = 'a duration like "500ms", "5s", "2m", "1m30s" or bare seconds';

function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function durationMs(text: string): number | undefined {
  const ms = parseDurationMs(text);
  return ms === undefined ? undefined : Math.min(Math.round(ms), Number.MAX_SAFE_INTEGER);
}

/**
 * The policy a function's annotations give over `base` (the queue's retry policy) and
 * `upstreamTimeoutMs` (the queue's `upstream_timeout`, the cap of the function's timeout; default
 * no cap). A bad value keeps the base value and adds a one-line warning, so one function's typo
 * never stops the worker. Allocates nothing for a function that sets none of them (most).
 */
export function functionPolicyOf(base: RetryPolicy, annotations: Readonly<Record<string, string>>, upstreamTimeoutMs: number = Number.POSITIVE_INFINITY): FunctionPolicy {
  const storeResult = annotations[STORE_RESULT_ANNOTATION] === 'true';
  const { timeout, warnings: timeoutWarnings } = annotatedTimeout(annotations, upstreamTimeoutMs);
  if (!RETRY_ANNOTATION_NAMES.some((name) => annotations[name] !== undefined)) {
    return { policy: base, warnings: timeoutWarnings, storeResult, timeout };
  }
  const warnings: string[] = [...timeoutWarnings];
  // Reads one annotation; on a bad value warns and keeps `fallback`, shown to the user as `shown`.
  const read = <T>(name: string, parse: (value: string) => T | undefined, fallback: T, shown: string, expected: string): T => {
    const value = annotations[name];
    if (value === undefined) return fallback;
    const parsed = parse(value);
    if (parsed !== undefined) return parsed;
    warnings.push(`${name}=${JSON.stringify(value)} is not ${expected}; using ${shown}`);
    return fallback;
  };

  const maxAttempts = read(
    RETRY_ANNOTATIONS.attempts,
    (v) => (/^\d+$/.test(v.trim()) && Number(v) >= 1 && Number.isSafeInteger(Number(v)) ? Number(v) : undefined),
    base.maxAttempts,
    String(base.maxAttempts),
    'an integer ≥ 1',
  );
  const retryStatuses = read(
    RETRY_ANNOTATIONS.codes,
    parseRetryStatuses,
    base.retryStatuses,
    [...base.retryStatuses].join(',') || '(none)',
    'a comma-separated list of HTTP statuses 100-599',
  );
  let initialWaitMs = read(RETRY_ANNOTATIONS.minWait, durationMs, base.initialWaitMs, formatDuration(base.initialWaitMs), DURATION_EXPECTED);
  let maxWaitMs = read(RETRY_ANNOTATIONS.maxWait, durationMs, base.maxWaitMs, formatDuration(base.maxWaitMs), DURATION_EXPECTED);
  const mode = read(RETRY_ANNOTATIONS.backoff, (v) => BACKOFF_MODES.find((m) => m === v.trim().toLowerCase()), base.mode, base.mode, `one of ${BACKOFF_MODES.join('|')}`);

  const waitsChanged = initialWaitMs !== base.initialWaitMs || maxWaitMs !== base.maxWaitMs;
  if (waitsChanged && initialWaitMs > maxWaitMs) {
    warnings.push(
      `${RETRY_ANNOTATIONS.minWait} (${formatDuration(initialWaitMs)}) is greater than ` +
        `${RETRY_ANNOTATIONS.maxWait} (${formatDuration(maxWaitMs)}); using ` +
        `${formatDuration(base.initialWaitMs)} and ${formatDuration(base.maxWaitMs)}`,
    );
    initialWaitMs = base.initialWaitMs;
    maxWaitMs = base.maxWaitMs;
  }

  const policy: RetryPolicy = Object.freeze({ maxAttempts, retryStatuses: new Set(retryStatuses), initialWaitMs, maxWaitMs, mode });
  return { policy, warnings, storeResult, timeout };
}

/**
 * {@link functionPolicyOf} over one base policy and one queue's `upstream_timeout` (ms), remembered
 * per annotations object: resolvers hand out the same frozen annotations for a function until they
 * look it up again, so each function's annotations are parsed once, not at every call.
 */
export function functionPolicies(base: RetryPolicy, upstreamTimeoutMs: number): (annotations: Readonly<Record<string, string>>) => FunctionPolicy {
  const known = new WeakMap<object, FunctionPolicy>();
  return (annotations) => {
    let policy = known.get(annotations);
    if (policy === undefined) {
      policy = functionPolicyOf(base, annotations, upstreamTimeoutMs);
      known.set(annotations, policy);
    }
    return policy;
  };
}
