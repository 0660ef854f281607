import { QUEUE_NAME } from '../config/queue-name.js';
import { DEAD_LETTER_REASONS, type DeadLetter, type DeadLetterReason } from '../queue/dead-letter.js';
import { DEAD_LETTER_SUBJECT_PREFIX } from '../queue/topology.js';
import { badTimeBound as badTime, parseTimeBound } from '../status/time-bound.js';

export { parseTimeBound };

/** Which dead letters a command applies to: every criterion given must match. */
export interface DeadLetterFilter {
  /** Function name, or `name.namespace`. */
  readonly functionName?: string | undefined;
  /** Queue (stream) the invocation came from; becomes the subject filter `asyncfn.dead-letters.<queue>`. */
  readonly queue?: string | undefined;
  readonly reason?: DeadLetterReason | undefined;
  /** Unix ms, inclusive: dead-lettered at or after (compared with the dead letter's `atMs`). */
  readonly sinceMs?: number | undefined;
  /** Unix ms, inclusive: dead-lettered at or before. */
  readonly untilMs?: number | undefined;
  /** Explicit dead-letter stream sequences, ascending and unique; empty means "any". */
  readonly seqs: readonly number[];
}

/** The raw option values, as the command line gave them. */
export interface FilterOptions {
  readonly function?: string | undefined;
  readonly queue?: string | undefined;
  readonly reason?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const SEQ = /^[1-9]\d*$/;

/** Parses the filter options and the positional sequence numbers; `nowMs` anchors relative times. */
export function parseFilter(opts: FilterOptions, positionals: readonly string[], nowMs: number): Parsed<DeadLetterFilter> {
  if (opts.function !== undefined && opts.function.trim() === '') return fail('--function must not be empty');
  if (opts.queue !== undefined && !QUEUE_NAME.test(opts.queue)) {
    return fail(`--queue "${opts.queue}" is not a queue name (letters, digits, "_" and "-")`);
  }
  if (opts.reason !== undefined && !(DEAD_LETTER_REASONS as readonly string[]).includes(opts.reason)) {
    return fail(`--reason "${opts.reason}" is not one of ${DEAD_LETTER_REASONS.join(', ')}`);
  }
  const sinceMs = opts.since === undefined ? undefined : parseTimeBound(opts.since, nowMs);
  if (sinceMs === undefined && opts.since !== undefined) return fail(badTime('--since', opts.since));
  const untilMs = opts.until === undefined ? undefined : parseTimeBound(opts.until, nowMs);
  if (untilMs === undefined && opts.until !== undefined) return fail(badTime('--until', opts.until));
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs > untilMs) return fail('--since is later than --until');

  const seqs = new Set<number>();
  for (const text of positionals) {
    const seq = parseSeq(text);
    if (seq === undefined) return fail(`"${text}" is not a dead-letter sequence number`);
    seqs.add(seq);
  }
  return {
    ok: true,
    value: {
      functionName: opts.function?.trim(),
      queue: opts.queue,
      reason: opts.reason as DeadLetterReason | undefined,
      sinceMs,
      untilMs,
      seqs: [...seqs].sort((a, b) => a - b),
    },
  };
}

/** A positive integer that is a safe stream sequence, else undefined. */
export function parseSeq(text: string): number | undefined {
  if (!SEQ.test(text)) return undefined;
  const seq = Number(text);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/** Whether any criterion other than explicit sequences is set. */
export function hasCriteria(filter: DeadLetterFilter): boolean {
  return filter.functionName !== undefined || filter.queue !== undefined || filter.reason !== undefined || filter.sinceMs !== undefined || filter.untilMs !== undefined;
}

/** Whether the only criterion is the queue, which a subject filter alone can select. */
export function isQueueOnly(filter: DeadLetterFilter): boolean {
  return filter.queue !== undefined && filter.seqs.length === 0 && !hasCriteria({ ...filter, queue: undefined });
}

/** The subject to read from the dead-letter stream. */
export function filterSubject(filter: Pick<DeadLetterFilter, 'queue'>): string {
  return DEAD_LETTER_SUBJECT_PREFIX + (filter.queue ?? '>');
}

/** Whether a dead letter meets every criterion of the filter. */
export function matchesFilter(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.seqs.length > 0 && !filter.seqs.includes(letter.seq)) return false;
  if (filter.queue !== undefined && letter.queue !== filter.queue) return false;
  if (filter.reason !== undefined && letter.reason !== filter.reason) return false;
  if (filter.sinceMs !== undefined && !(letter.atMs >= filter.sinceMs)) return false;
  if (filter.untilMs !== undefined && !(letter.atMs <= filter.untilMs)) return false;
  if (filter.functionName !== undefined) {
    const inv = letter.invocation;
    // A poison message has no function: it never matches a function filter.
    if (!inv) return false;
    if (inv.functionName !== filter.functionName && `${inv.functionName}.${inv.namespace}` !== filter.functionName) return false;
  }
  return true;
}

function fail<T>(error: string): Parsed<T> {
  return { ok: false, error };
}
