import { FINAL_STATES, type InvocationRecord, type InvocationState } from './records.js';
import { badTimeBound, parseTimeBound } from './time-bound.js';

/**
 * Which invocation records a bulk operation (`asyncfn cancel`, `POST /system/invocations/cancel`)
 * applies to: every criterion given must match; an absent one matches anything.
 */
export interface InvocationFilter {
  /** Function name, or `name.namespace`. */
  readonly functionName?: string | undefined;
  readonly namespace?: string | undefined;
  /** Queue (stream) the invocation was published to. */
  readonly queue?: string | undefined;
  /** Any of these states; undefined means any state. */
  readonly states?: readonly InvocationState[] | undefined;
  /** The batch the invocation was submitted in (`X-Batch-Id`). */
  readonly batchId?: string | undefined;
  /** Unix ms, inclusive: enqueued at or after. */
  readonly sinceMs?: number | undefined;
  /** Unix ms, inclusive: enqueued at or before (`before` is exclusive and stored as its ms minus one). */
  readonly untilMs?: number | undefined;
}

/**
 * The filter as text, as the command line (`--function f --state queued,running`) or the API
 * (JSON body or query string, see {@link filterOptionsFrom}) give it.
 */
export interface InvocationFilterOptions {
  readonly function?: string | undefined;
  readonly namespace?: string | undefined;
  readonly queue?: string | undefined;
  /** Comma-separated states. */
  readonly state?: string | undefined;
  readonly batch?: string | undefined;
  /** A duration ago (`2h`) or an RFC 3339 time. */
  readonly since?: string | undefined;
  /** Exclusive upper bound: a duration ago or an RFC 3339 time. */
  readonly before?: string | undefined;
  /** Inclusive upper bound: a duration ago or an RFC 3339 time. */
  readonly until?: string | undefined;
}

/** The option names of {@link InvocationFilterOptions}. */
export const INVOCATION_FILTER_FIELDS = ['function', 'namespace', 'queue', 'state', 'batch', 'since', 'before', 'until'] as const;

/** Every state a record can have, in lifecycle order. */
export const INVOCATION_STATES: readonly InvocationState[] = ['scheduled', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled', 'deadLettered'];

/** States in which a cancellation still changes something. */
export const CANCELLABLE_STATES: readonly InvocationState[] = INVOCATION_STATES.filter((s) => !FINAL_STATES.has(s));

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** How an option is named in error messages: `--since` on the command line, `since` in the API. */
export type OptionLabel = (name: string) => string;
export const cliLabel: OptionLabel = (name) => `--${name}`;
export const apiLabel: OptionLabel = (name) => `"${name}"`;

/** Queue and namespace names: letters, digits, "_", "-" and "." (a namespace may be a DNS name). */
const NAME = /^[\w.-]+$/;

/**
 * Parses the filter options; `nowMs` anchors relative times (`--since 1h`). `allowedStates`
 * restricts `state` (cancel takes only {@link CANCELLABLE_STATES}).
 */
export function parseInvocationFilter(
  opts: InvocationFilterOptions,
  nowMs: number,
  { label = cliLabel, allowedStates = INVOCATION_STATES }: { label?: OptionLabel; allowedStates?: readonly InvocationState[] } = {},
): Parsed<InvocationFilter> {
  for (const name of ['function', 'namespace', 'queue', 'batch'] as const) {
    const value = opts[name];
    if (value !== undefined && value.trim() === '') return fail(`${label(name)} must not be empty`);
    if (value !== undefined && name !== 'function' && name !== 'batch' && !NAME.test(value.trim())) {
      return fail(`${label(name)} "${value}" is not a ${name} name (letters, digits, "_", "-" and ".")`);
    }
  }
  let states: InvocationState[] | undefined;
  if (opts.state !== undefined) {
    states = [];
    for (const word of opts.state.split(',').map((s) => s.trim())) {
      if (!(INVOCATION_STATES as readonly string[]).includes(word)) return fail(`${label('state')} "${word}" is not one of ${INVOCATION_STATES.join(', ')}`);
      if (!allowedStates.includes(word as InvocationState)) return fail(`${label('state')} "${word}": only ${allowedStates.join(', ')} apply here`);
      if (!states.includes(word as InvocationState)) states.push(word as InvocationState);
    }
  }
  const bound = (name: 'since' | 'before' | 'until'): Parsed<number | undefined> => {
    const text = opts[name];
    if (text === undefined) return { ok: true, value: undefined };
    const ms = parseTimeBound(text, nowMs);
    return ms === undefined ? fail(badTimeBound(label(name), text)) : { ok: true, value: ms };
  };
  const since = bound('since');
  if (!since.ok) return since;
  const before = bound('before');
  if (!before.ok) return before;
  const until = bound('until');
  if (!until.ok) return until;
  if (before.value !== undefined && until.value !== undefined) return fail(`${label('before')} and ${label('until')} exclude each other`);
  // Records keep whole milliseconds: "before t" is "at or before t - 1".
  const untilMs = before.value !== undefined ? before.value - 1 : until.value;
  if (since.value !== undefined && untilMs !== undefined && since.value > untilMs) return fail(`${label('since')} is later than the upper bound`);
  return {
    ok: true,
    value: {
      functionName: opts.function?.trim(),
      namespace: opts.namespace?.trim(),
      queue: opts.queue?.trim(),
      states,
      batchId: opts.batch?.trim(),
      sinceMs: since.value,
      untilMs,
    },
  };
}

/** Whether any criterion is set: a bulk operation without one needs an explicit "all". */
export function hasInvocationCriteria(filter: InvocationFilter): boolean {
  return (
    filter.functionName !== undefined ||
    filter.namespace !== undefined ||
    filter.queue !== undefined ||
    filter.states !== undefined ||
    filter.batchId !== undefined ||
    filter.sinceMs !== undefined ||
    filter.untilMs !== undefined
  );
}

/** Whether a record meets every criterion of the filter. */
export function matchesInvocation(record: InvocationRecord, filter: InvocationFilter): boolean {
  if (filter.functionName !== undefined && record.function !== filter.functionName && `${record.function}.${record.namespace}` !== filter.functionName) return false;
  if (filter.namespace !== undefined && record.namespace !== filter.namespace) return false;
  if (filter.queue !== undefined && record.queue !== filter.queue) return false;
  if (filter.states !== undefined && !filter.states.includes(record.state)) return false;
  if (filter.batchId !== undefined && record.batchId !== filter.batchId) return false;
  if (filter.sinceMs !== undefined && !(record.enqueuedAtMs >= filter.sinceMs)) return false;
  if (filter.untilMs !== undefined && !(record.enqueuedAtMs <= filter.untilMs)) return false;
  return true;
}

/** One API request's filter fields and flags, before parsing: text per field. */
export interface RequestFilterFields {
  readonly fields: Readonly<Record<string, string>>;
  /** `dryRun`: count only. */
  readonly dryRun: boolean;
  /** `all`: no criterion is needed. */
  readonly all: boolean;
}

/**
 * The filter of an API request, from its JSON body (an object; arrays of strings are joined
 * with commas, numbers and booleans written as text) and its query string; the flags `dryRun`
 * and `all` may come from either. A field given in both places, a field not in `allowed`, or a
 * body that is not a JSON object is refused.
 */
export function filterOptionsFrom(body: unknown, query: Readonly<Record<string, unknown>>, allowed: readonly string[]): Parsed<RequestFilterFields> {
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) return fail('the body must be a JSON object of filter fields');
  const fields: Record<string, string> = {};
  const flags: Record<'dryRun' | 'all', boolean> = { dryRun: false, all: false };
  const take = (source: Readonly<Record<string, unknown>>, where: string): string | undefined => {
    for (const [name, raw] of Object.entries(source)) {
      if (raw === undefined || raw === null) continue;
      const text = textOf(raw);
      if (text === undefined) return `"${name}" in the ${where} must be a string, a number, a boolean or an array of them`;
      if (name === 'dryRun' || name === 'all') {
        if (text !== 'true' && text !== 'false') return `"${name}" must be true or false`;
        flags[name] = flags[name] || text === 'true';
        continue;
      }
      // `batchId` as the record names it, `batch` as the command line does.
      const field = name === 'batchId' ? 'batch' : name;
      if (!allowed.includes(field)) return `unknown filter field "${name}" in the ${where}: one of ${allowed.join(', ')}`;
      if (fields[field] !== undefined) return `"${name}" is given twice`;
      fields[field] = text;
    }
    return undefined;
  };
  const problem = take(query, 'query string') ?? take((body ?? {}) as Record<string, unknown>, 'body');
  if (problem !== undefined) return fail(problem);
  return { ok: true, value: { fields, ...flags } };
}

function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    const parts = value.map(textOf);
    return parts.every((p) => p !== undefined && !Array.isArray(p)) ? parts.join(',') : undefined;
  }
  return undefined;
}

function fail<T>(error: string): Parsed<T> {
  return { ok: false, error };
}
