import { parseDurationMs } from '../config/duration.js';

/**
 * How long one function call may take. Three limits, narrowest wins:
 * - the queue's `upstream_timeout`: the default and the cap (a queue's ack extension, its
 *   `max_inflight` and the operator's sizing assume no call of it lasts longer);
 * - the function's annotation (`com.asyncfn.timeout`, else `com.openfaas.timeout`): replaces the
 *   default, up to the cap; above it the cap applies, with a warning;
 * - the caller's `X-Timeout` on `POST /async-function/<name>`: can only lower what the other two give.
 * Pure: the gateway parses the header with {@link parseTimeoutMs}, the worker applies
 * {@link callTimeout} to each attempt.
 */

/** The function's timeout annotations, in the order they are read: asyncfn's own wins over OpenFaaS's. */
export const TIMEOUT_ANNOTATIONS = Object.freeze(['com.asyncfn.timeout', 'com.openfaas.timeout'] as const);

/** The caller's per-invocation limit. */
export const TIMEOUT_HEADER = 'x-timeout';

/** The default limit's name, as messages show it. */
export const UPSTREAM_TIMEOUT = 'upstream_timeout';

/** A call's time limit and what set it (`upstream_timeout`, an annotation's name, or `X-Timeout`), for messages. */
export interface CallTimeout {
  /** ms, ≥ 1. */
  readonly ms: number;
  readonly setBy: string;
}

/** What a function's timeout annotation gives: its limit (absent = the queue's) and one-line warnings. */
export interface AnnotatedTimeout {
  readonly timeout?: CallTimeout | undefined;
  readonly warnings: readonly string[];
}

const NONE: AnnotatedTimeout = Object.freeze({ warnings: Object.freeze([]) });

/**
 * A timeout as `X-Timeout` and the annotations write it: the config's durations ("30s", "2m",
 * "1m30s", "500ms") or bare seconds ("30", "1.5"). Whole ms, rounded; undefined unless ≥ 1 ms.
 */
export function parseTimeoutMs(text: string): number | undefined {
  const ms = parseDurationMs(text);
  if (ms === undefined) return undefined;
  const whole = Math.min(Math.round(ms), Number.MAX_SAFE_INTEGER);
  return whole >= 1 ? whole : undefined;
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The queue's limit as a warning names it; unit tests of policies may pass no cap (Infinity). */
function theQueues(upstreamTimeoutMs: number): string {
  return Number.isFinite(upstreamTimeoutMs) ? `the queue's ${UPSTREAM_TIMEOUT} (${formatMs(upstreamTimeoutMs)})` : `the queue's ${UPSTREAM_TIMEOUT}`;
}

/**
 * The limit a function's annotation sets, capped at `upstreamTimeoutMs`. An invalid value, or one
 * above the cap, gives no limit of its own (the queue's applies) and a warning, so one function's
 * typo never stops the worker. A function without the annotation gets a shared constant.
 */
export function annotatedTimeout(annotations: Readonly<Record<string, string>>, upstreamTimeoutMs: number): AnnotatedTimeout {
  const name = TIMEOUT_ANNOTATIONS.find((n) => annotations[n] !== undefined);
  if (name === undefined) return NONE;
  const value = annotations[name]!;
  const ms = parseTimeoutMs(value);
  const shown = `${name}=${JSON.stringify(value)}`;
  if (ms === undefined) {
    return { warnings: [`${shown} is not a duration ≥ 1ms like "30s", "2m" or bare seconds; using ${theQueues(upstreamTimeoutMs)}`] };
  }
  if (ms > upstreamTimeoutMs) return { warnings: [`${shown} is above ${theQueues(upstreamTimeoutMs)}, which caps it; using that`] };
  return { timeout: { ms, setBy: name }, warnings: NONE.warnings };
}

/**
 * The limit of one call: the function's (from {@link annotatedTimeout}), else the queue's
 * `upstream_timeout`, lowered by the caller's `X-Timeout` when that is shorter. Never above
 * `upstream_timeout`, whatever it is given.
 */
export function callTimeout(upstreamTimeoutMs: number, functionTimeout: CallTimeout | undefined, requestedMs: number | undefined): CallTimeout {
  let limit: CallTimeout =
    functionTimeout !== undefined && functionTimeout.ms <= upstreamTimeoutMs ? functionTimeout : { ms: upstreamTimeoutMs, setBy: UPSTREAM_TIMEOUT };
  if (requestedMs !== undefined && requestedMs < limit.ms) limit = { ms: requestedMs, setBy: 'X-Timeout' };
  return limit;
}
