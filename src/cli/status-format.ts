import type { InvocationProgress, InvocationRecord } from '../status/records.js';
import { isFinal } from '../status/wait.js';
import { formatDurationMs, isoTime } from './status-nats.js';

/** Durations of a record, ms; undefined when a time they need is unknown. */
interface Durations {
  /** The last function call, as the worker measured it. */
  readonly durationMs: number | undefined;
  /** Last attempt: started → finished (the function call plus its callback). */
  readonly attemptMs: number | undefined;
  /** Whole invocation: enqueued → finished. */
  readonly totalMs: number | undefined;
  /** Not finished yet: enqueued → now. */
  readonly ageMs: number | undefined;
}

function durationsOf(record: InvocationRecord, nowMs: number): Durations {
  const { enqueuedAtMs, startedAtMs, finishedAtMs } = record;
  const known = (ms: number | undefined): ms is number => ms !== undefined && Number.isFinite(ms) && ms > 0;
  return {
    durationMs: record.durationMs !== undefined && Number.isFinite(record.durationMs) ? Math.max(0, record.durationMs) : undefined,
    attemptMs: known(startedAtMs) && known(finishedAtMs) ? Math.max(0, finishedAtMs - startedAtMs) : undefined,
    totalMs: known(enqueuedAtMs) && known(finishedAtMs) ? Math.max(0, finishedAtMs - enqueuedAtMs) : undefined,
    ageMs: known(enqueuedAtMs) && !known(finishedAtMs) ? Math.max(0, nowMs - enqueuedAtMs) : undefined,
  };
}

/** `asyncfn status`: aligned "name: value" lines, times in ISO 8601 UTC, durations like 1.204s. */
export function formatRecord(record: InvocationRecord, nowMs: number): string[] {
  const d = durationsOf(record, nowMs);
  const lines = [
    field('call id', record.callId),
    field('state', `${record.state}${isFinal(record) ? ' (final)' : ''}`),
    field('function', record.namespace ? `${record.function}.${record.namespace}` : record.function),
    field('queue', record.queue || '-'),
    field('attempts', String(record.attempts)),
    field('last status', record.status === undefined ? '-' : String(record.status)),
    field('enqueued at', isoTime(record.enqueuedAtMs)),
    ...(record.notBeforeMs ? [field('not before', isoTime(record.notBeforeMs))] : []),
    field('started at', `${isoTime(record.startedAtMs)}${record.attempts > 1 && record.startedAtMs ? ' (last attempt)' : ''}`),
    field('finished at', isoTime(record.finishedAtMs)),
  ];
  if (d.durationMs !== undefined) lines.push(field('duration', `${formatDurationMs(d.durationMs)} (last function call)`));
  else if (d.attemptMs !== undefined) lines.push(field('duration', `${formatDurationMs(d.attemptMs)} (last attempt, started → finished)`));
  if (d.totalMs !== undefined) lines.push(field('total', `${formatDurationMs(d.totalMs)} (enqueued → finished)`));
  if (d.ageMs !== undefined) lines.push(field('age', `${formatDurationMs(d.ageMs)} (enqueued → now)`));
  lines.push(field('error', record.error ?? '-'));
  if (record.progress) lines.push(field('progress', progressLine(record.progress, nowMs)));
  if (record.result) lines.push(field('result', resultLine(record)));
  return lines;
}

/**
 * `asyncfn status --json`: the record with every key present (null when unknown), times as ISO
 * strings beside the unix ms, durations in ms (durationMs: the last function call; attemptMs:
 * started → finished; totalMs: enqueued → finished; ageMs: enqueued → now while not finished),
 * and `final`.
 */
export function recordJson(record: InvocationRecord, nowMs: number): Record<string, unknown> {
  const d = durationsOf(record, nowMs);
  const iso = (ms: number | undefined): string | null => (isoTime(ms) === '-' ? null : isoTime(ms));
  return {
    callId: record.callId,
    state: record.state,
    final: isFinal(record),
    function: record.function,
    namespace: record.namespace,
    queue: record.queue,
    attempts: record.attempts,
    status: record.status ?? null,
    enqueuedAt: iso(record.enqueuedAtMs),
    notBefore: iso(record.notBeforeMs),
    startedAt: iso(record.startedAtMs),
    finishedAt: iso(record.finishedAtMs),
    enqueuedAtMs: record.enqueuedAtMs ?? null,
    notBeforeMs: record.notBeforeMs ?? null,
    startedAtMs: record.startedAtMs ?? null,
    finishedAtMs: record.finishedAtMs ?? null,
    durationMs: d.durationMs ?? null,
    attemptMs: d.attemptMs ?? null,
    totalMs: d.totalMs ?? null,
    ageMs: d.ageMs ?? null,
    error: record.error ?? null,
    result: record.result ?? null,
    progress: record.progress ?? null,
  };
}

/** "40% resizing (2.1s ago)": the function's latest report. */
function progressLine(progress: InvocationProgress, nowMs: number): string {
  const percent = `${Math.round(progress.percent * 10) / 10}%`;
  const ago = Number.isFinite(progress.atMs) ? ` (${formatDurationMs(Math.max(0, nowMs - progress.atMs))} ago)` : '';
  return `${percent}${progress.message ? ` ${progress.message}` : ''}${ago}`;
}

function resultLine(record: InvocationRecord): string {
  const r = record.result!;
  const what = `${r.status}${r.contentType ? ` ${r.contentType}` : ''}, ${r.bytes} bytes`;
  return r.stored ? `stored: ${what} (GET /async-function/${record.callId}/result)` : `not stored: ${what}${r.reason ? ` (${r.reason})` : ''}`;
}

function field(name: string, value: string): string {
  return `${`${name}:`.padEnd(14)}${value}`;
}
