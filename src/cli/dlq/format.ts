import type { MsgHdrs } from '@nats-io/nats-core';
import type { DeadLetter } from '../../queue/dead-letter.js';

export { progressReporter } from '../progress.js';

/** What `list` and `show` print about one dead letter (headers and body as stored). */
export interface DeadLetterView {
  readonly letter: DeadLetter;
  readonly subject: string;
  readonly headers: MsgHdrs | undefined;
  readonly data: Uint8Array;
  /** Unix ms when the stream stored it. */
  readonly storedAtMs: number;
}

/** Error column width in the table; longer errors end in "…". */
export const ERROR_COLUMN_CHARS = 60;

const TABLE_HEADER = ['SEQ', 'TIME', 'QUEUE', 'FUNCTION', 'REASON', 'ATTEMPTS', 'STATUS', 'CALL-ID', 'ERROR'] as const;

/** The `list` table: a header line and one line per dead letter, columns padded to fit. */
export function formatTable(letters: readonly DeadLetter[]): string[] {
  const rows = letters.map((l) => [
    String(l.seq),
    isoTime(l.atMs),
    l.queue || '-',
    functionLabel(l),
    l.reason,
    String(l.attempts),
    l.status === undefined ? '-' : String(l.status),
    l.invocation?.callId ?? '-',
    truncate(l.error ?? (l.decodeError ? `undecodable: ${l.decodeError}` : '-'), ERROR_COLUMN_CHARS),
  ]);
  const all = [[...TABLE_HEADER], ...rows];
  const widths = TABLE_HEADER.map((_, col) => Math.max(...all.map((r) => r[col]!.length)));
  // The last column is not padded, so lines carry no trailing spaces.
  return all.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  '));
}

/** "0 dead letters", "1 dead letter", "12 dead letters". */
export function countLine(count: number): string {
  return `${count} dead ${count === 1 ? 'letter' : 'letters'}`;
}

/** One `list --json` line: flat, every key present (null when unknown). */
export function listJson(letter: DeadLetter): Record<string, unknown> {
  const inv = letter.invocation;
  return {
    seq: letter.seq,
    time: isoTime(letter.atMs),
    atMs: letter.atMs,
    queue: letter.queue,
    function: inv?.functionName ?? null,
    namespace: inv?.namespace ?? null,
    reason: letter.reason,
    attempts: letter.attempts,
    status: letter.status ?? null,
    callId: inv?.callId ?? null,
    error: letter.error ?? null,
    decodeError: letter.decodeError ?? null,
  };
}

/** A body as text when it is printable UTF-8, else base64; with its size in bytes. */
export interface BodyView {
  readonly encoding: 'utf8' | 'base64';
  readonly bytes: number;
  readonly data: string;
}

// Control characters other than tab, line feed and carriage return make a body "binary".
const NON_PRINTABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

export function bodyView(data: Uint8Array): BodyView {
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data);
  } catch {
    text = undefined;
  }
  if (text !== undefined && !NON_PRINTABLE.test(text)) return { encoding: 'utf8', bytes: data.length, data: text };
  return { encoding: 'base64', bytes: data.length, data: Buffer.from(data).toString('base64') };
}

/** Every stored header, one pair per value, in stored order. */
export function headerPairs(headers: MsgHdrs | undefined): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (!headers) return pairs;
  for (const [key, values] of headers) for (const value of values) pairs.push([key, value]);
  return pairs;
}

/** `show --json`: metadata, then the request, or for poison the decode error and raw headers. */
export function showJson(view: DeadLetterView): Record<string, unknown> {
  const { letter } = view;
  const inv = letter.invocation;
  const meta = {
    seq: letter.seq,
    subject: view.subject,
    storedAt: isoTime(view.storedAtMs),
    reason: letter.reason,
    queue: letter.queue,
    time: isoTime(letter.atMs),
    atMs: letter.atMs,
    attempts: letter.attempts,
    status: letter.status ?? null,
    error: letter.error ?? null,
  };
  if (!inv) {
    return { ...meta, decodeError: letter.decodeError ?? null, rawHeaders: headerPairs(view.headers), body: bodyView(view.data) };
  }
  return {
    ...meta,
    callId: inv.callId,
    function: inv.functionName,
    namespace: inv.namespace,
    request: {
      method: inv.method,
      path: inv.path,
      query: inv.query,
      headers: inv.headers,
      callbackUrl: inv.callbackUrl ?? null,
      enqueuedAt: isoTime(inv.enqueuedAtMs),
      traceparent: inv.traceparent ?? null,
      tracestate: inv.tracestate ?? null,
      body: bodyView(inv.body),
    },
  };
}

/** `show`: aligned "name: value" lines, then the request (or raw headers), then the body. */
export function formatShow(view: DeadLetterView): string[] {
  const { letter } = view;
  const inv = letter.invocation;
  const lines = [
    field('seq', String(letter.seq)),
    field('subject', view.subject),
    field('stored at', isoTime(view.storedAtMs)),
    field('reason', letter.reason),
    field('queue', letter.queue || '-'),
    field('dead-lettered', isoTime(letter.atMs)),
    field('attempts', String(letter.attempts)),
    field('last status', letter.status === undefined ? '-' : String(letter.status)),
    field('last error', letter.error ?? '-'),
  ];
  if (!inv) {
    lines.push(field('decode error', letter.decodeError ?? '-'), 'raw headers:');
    for (const [name, value] of headerPairs(view.headers)) lines.push(`  ${name}: ${value}`);
    return [...lines, ...formatBody(view.data)];
  }
  lines.push(
    field('call id', inv.callId),
    field('function', `${inv.functionName}.${inv.namespace}`),
    'request:',
    field('  method', inv.method),
    field('  path', inv.path || '/'),
    field('  query', inv.query || '-'),
    field('  callback url', inv.callbackUrl ?? '-'),
    field('  enqueued at', isoTime(inv.enqueuedAtMs)),
  );
  if (inv.traceparent) lines.push(field('  traceparent', inv.traceparent));
  if (inv.tracestate) lines.push(field('  tracestate', inv.tracestate));
  lines.push('  headers:');
  for (const [name, value] of inv.headers) lines.push(`    ${name}: ${value}`);
  return [...lines, ...formatBody(inv.body)];
}

export function isoTime(ms: number): string {
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : '-';
}

export function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}

function functionLabel(letter: DeadLetter): string {
  return letter.invocation?.functionName ?? '-';
}

function formatBody(data: Uint8Array): string[] {
  const body = bodyView(data);
  if (body.bytes === 0) return ['body: (empty)'];
  return [`body (${body.bytes} bytes, ${body.encoding === 'utf8' ? 'text' : 'base64'}):`, body.data];
}

function field(name: string, value: string): string {
  return `${`${name}:`.padEnd(16)}${value}`;
}
