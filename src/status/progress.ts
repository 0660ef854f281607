import { BadRequestError } from '../errors.js';
import { FINAL_STATES, type InvocationProgress, type InvocationRecord } from './records.js';

export type { InvocationProgress };

/** Largest progress report body, bytes: a percent and a 200-character message fit many times. */
export const PROGRESS_MAX_BODY_BYTES = 4096;
/** Longest `message`, characters (UTF-16 code units, as JavaScript counts them). */
export const PROGRESS_MAX_MESSAGE_LENGTH = 200;

const FIELDS = new Set(['percent', 'message']);

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * A progress report's body, `{"percent": 40, "message": "resizing"}`, as the record keeps it
 * (stamped `atMs`, unix ms). The body is read as JSON whatever its Content-Type, since
 * `curl -d` sends form-urlencoded. Throws BadRequestError (400) with the reason: not JSON, not an
 * object, `percent` missing or not a number from 0 to 100, `message` not a string or longer than
 * {@link PROGRESS_MAX_MESSAGE_LENGTH} or holding control characters, an unknown field (a misspelt `percent` would otherwise be
 * lost without a word), or a body over {@link PROGRESS_MAX_BODY_BYTES}.
 */
export function parseProgressReport(body: Uint8Array, nowMs: number): InvocationProgress {
  if (body.length > PROGRESS_MAX_BODY_BYTES) throw new BadRequestError(`progress body of ${body.length} bytes exceeds ${PROGRESS_MAX_BODY_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(body));
  } catch {
    throw new BadRequestError('progress body is not JSON: send {"percent": 40, "message": "..."}');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError('progress body must be a JSON object: {"percent": 40, "message": "..."}');
  }
  const fields = value as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw new BadRequestError(`progress body has unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}: only percent and message`);
  const { percent, message } = fields;
  if (typeof percent !== 'number' || !Number.isFinite(percent) || percent < 0 || percent > 100) {
    throw new BadRequestError('progress percent must be a number from 0 to 100');
  }
  if (message !== undefined && typeof message !== 'string') throw new BadRequestError('progress message must be a string');
  if (message !== undefined && message.length > PROGRESS_MAX_MESSAGE_LENGTH) {
    throw new BadRequestError(`progress message is longer than ${PROGRESS_MAX_MESSAGE_LENGTH} characters`);
  }
  // `asyncfn status` prints it on a terminal: no line breaks or escape sequences.
  if (message !== undefined && CONTROL.test(message)) throw new BadRequestError('progress message must not hold control characters');
  return message === undefined ? { percent, atMs: nowMs } : { percent, message, atMs: nowMs };
}

/** What merging a report into a record gives. */
export type ProgressMerge =
  /** The record with the report: write it (if nobody wrote the record since it was read). */
  | { readonly kind: 'updated'; readonly record: InvocationRecord }
  /** The record already has this report or a later one (a slower gateway's write lost the race). */
  | { readonly kind: 'stale' }
  /** The invocation is final: nothing more is recorded about it. */
  | { readonly kind: 'final'; readonly state: InvocationRecord['state'] };

/**
 * Merges a progress report into the record as read. Only progress changes: state, attempts and
 * times stay the worker's. A final record is never changed. A report older than the one the record
 * holds is dropped, so reports arriving through several gateways cannot move progress back in time.
 */
export function mergeProgress(record: InvocationRecord, progress: InvocationProgress): ProgressMerge {
  if (FINAL_STATES.has(record.state)) return { kind: 'final', state: record.state };
  if (record.progress !== undefined && record.progress.atMs > progress.atMs) return { kind: 'stale' };
  return { kind: 'updated', record: { ...record, progress } };
}
