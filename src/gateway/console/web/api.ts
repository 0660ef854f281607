import type {
  BatchStatus,
  ConsoleSettings,
  DeadLetterDetail,
  DeadLetterFilter,
  DeadLetterPage,
  InFlightJson,
  InvocationRecord,
  PurgeResult,
  QueuesJson,
  ReplayResult,
} from './types';

/**
 * Every request the console makes, to the gateway's documented HTTP APIs on the same origin. The
 * browser adds the Basic credentials it was asked for when it loaded /ui (same origin, same realm).
 */

/** A refusal: the HTTP status, asyncfn's error code (X-Asyncfn-Error) and its one-line reason. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    cache: 'no-store',
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new ApiError(res.status, (await res.text()) || res.statusText, res.headers.get('x-asyncfn-error'));
  const text = await res.text();
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

/** The query string of the fields that have a value. */
export function queryOf(fields: Readonly<Record<string, string | number | undefined>>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== '') params.set(k, String(v));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

const enc = encodeURIComponent;

export const api = {
  settings: () => request<ConsoleSettings>('GET', '/ui/config.json'),
  queues: () => request<QueuesJson>('GET', '/system/queues'),
  inFlight: (fn?: string) => request<InFlightJson>('GET', `/system/inflight${queryOf({ function: fn, progress: 'true' })}`),
  invocation: (callId: string) => request<InvocationRecord>('GET', `/async-function/${enc(callId)}`),
  /** DELETE /async-function/<call-id>: 202 once the cancellation is recorded. */
  cancel: (callId: string) => request<void>('DELETE', `/async-function/${enc(callId)}`),
  deadLetters: (filter: DeadLetterFilter, after?: number, limit = 50) => request<DeadLetterPage>('GET', `/system/dead-letters${queryOf({ ...filter, after, limit })}`),
  deadLetter: (seq: number) => request<DeadLetterDetail>('GET', `/system/dead-letters/${seq}`),
  /** Replays the given dead letters (by sequence) with their call ids. */
  replay: (seqs: readonly number[]) => request<ReplayResult>('POST', '/system/dead-letters/replay', { seqs: seqs.join(',') }),
  purge: (filter: DeadLetterFilter, opts: { dryRun: boolean }) =>
    request<PurgeResult>('DELETE', `/system/dead-letters${queryOf({ ...filter, ...(hasCriteria(filter) ? {} : { all: 'true' }), dryRun: String(opts.dryRun) })}`),
  batch: (batchId: string) => request<BatchStatus>('GET', `/async-batch/${enc(batchId)}`),
};

/** Whether a dead-letter filter names anything (without, a purge needs all=true). */
export function hasCriteria(filter: DeadLetterFilter): boolean {
  return Object.values(filter).some((v) => v !== undefined && v !== '');
}
