import type { MsgHdrs } from '@nats-io/nats-core';
import type { DeadLetterFilter } from './filters.js';
import { readBounds, selectDeadLetters, type DeadLetterStreamAccess, type StoredDeadLetter } from './read.js';
import { printableText, redactHeaders, redactUrl } from '../telemetry/debug-bodies.js';

/** `GET /system/dead-letters`: a page holds this many by default, and at most {@link DEAD_LETTER_PAGE_MAX}. */
export const DEAD_LETTER_PAGE_DEFAULT = 50;
export const DEAD_LETTER_PAGE_MAX = 500;
/** Bytes of the body a detail shows; 4 KiB. */
export const DEAD_LETTER_BODY_PREVIEW_BYTES = 4096;

/** The size of the body a headers-only read left out, as the server tells it. */
const MSG_SIZE_HEADER = 'Nats-Msg-Size';

/** One dead letter in a list: what the console's table shows (null when unknown, as for poison). */
export interface DeadLetterSummary {
  readonly seq: number;
  readonly callId: string | null;
  readonly function: string | null;
  readonly namespace: string | null;
  readonly queue: string;
  readonly reason: string;
  /** The function's last HTTP status, when it answered. */
  readonly lastStatus: number | null;
  readonly attempts: number;
  /** When it was dead-lettered, Unix ms. */
  readonly atMs: number;
  /** The invocation's body size in bytes (a stored large body's size for a claim check). */
  readonly bodyBytes: number;
  /** The last error, one line. */
  readonly error: string | null;
}

/** One dead letter in full: the summary, the request (secrets redacted) and a body preview. */
export interface DeadLetterDetail extends DeadLetterSummary {
  readonly subject: string;
  /** When the dead-letter stream stored it, Unix ms. */
  readonly storedAtMs: number;
  /** Why a poison message could not be decoded; null otherwise. */
  readonly decodeError: string | null;
  readonly method: string | null;
  readonly path: string | null;
  readonly query: string | null;
  /** The invocation's headers (for poison: the raw stored headers), lower-case names, secrets `[redacted]`. */
  readonly headers: Record<string, string | string[]>;
  readonly callbackUrl: string | null;
  readonly enqueuedAtMs: number | null;
  /** The first {@link DEAD_LETTER_BODY_PREVIEW_BYTES} of the body: text, or base64 when not printable UTF-8. */
  readonly body: string;
  readonly bodyEncoding: 'utf8' | 'base64';
  /** Whether `body` shows less than `bodyBytes` (always, for a body stored apart). */
  readonly bodyTruncated: boolean;
  /** The payload-bucket object holding a large body (claim check), or null when the body is in the message. */
  readonly bodyRef: string | null;
}

/** A page of dead letters, oldest first; `next` is the cursor (`after`) of the following page, null at the end. */
export interface DeadLetterPage {
  readonly items: readonly DeadLetterSummary[];
  readonly next: number | null;
}

/**
 * The dead letters matching `filter` stored after `afterSeq`, in sequence order (oldest first: a
 * cursor stays valid while new ones arrive, at the end), at most `limit`, read headers-only.
 */
export async function listDeadLetterPage(
  access: DeadLetterStreamAccess,
  filter: DeadLetterFilter,
  opts: { afterSeq?: number | undefined; limit: number },
): Promise<DeadLetterPage> {
  const bounds = await readBounds(access.jsm);
  if (!bounds) return { items: [], next: null };
  const items: DeadLetterSummary[] = [];
  // One more than a page says whether there is a next one; leaving the loop deletes the consumer.
  for await (const found of selectDeadLetters(access, filter, bounds, { headersOnly: true, afterSeq: opts.afterSeq })) {
    if (items.length === opts.limit) return { items, next: items[items.length - 1]!.seq };
    items.push(deadLetterSummary(found));
  }
  return { items, next: null };
}

export function deadLetterSummary(found: StoredDeadLetter): DeadLetterSummary {
  const { letter } = found;
  const inv = letter.invocation;
  return {
    seq: letter.seq,
    callId: inv?.callId ?? null,
    function: inv?.functionName ?? null,
    namespace: inv?.namespace ?? null,
    queue: letter.queue,
    reason: letter.reason,
    lastStatus: letter.status ?? null,
    attempts: letter.attempts,
    atMs: letter.atMs,
    bodyBytes: inv?.bodyRef?.size ?? storedBodyBytes(found),
    error: letter.error ?? null,
  };
}

/** What `asyncfn dlq show` prints, as data: headers redacted by the rules of write_debug's logs. */
export function deadLetterDetail(found: StoredDeadLetter): DeadLetterDetail {
  const { letter } = found;
  const inv = letter.invocation;
  const summary = deadLetterSummary(found);
  const preview = bodyPreview(inv ? inv.body : found.data);
  return {
    ...summary,
    subject: found.subject,
    storedAtMs: found.storedAtMs,
    decodeError: letter.decodeError ?? null,
    method: inv?.method ?? null,
    path: inv ? inv.path || '/' : null,
    query: inv?.query ?? null,
    headers: redactHeaders(inv ? inv.headers : headerPairs(found.headers)),
    callbackUrl: inv?.callbackUrl === undefined ? null : redactUrl(inv.callbackUrl),
    enqueuedAtMs: inv?.enqueuedAtMs ?? null,
    body: preview.body,
    bodyEncoding: preview.encoding,
    bodyTruncated: preview.shownBytes < summary.bodyBytes,
    bodyRef: inv?.bodyRef?.name ?? null,
  };
}

/** The first `maxBytes` of a body (cut at a character boundary when text): printable UTF-8 as text, else base64. */
export function bodyPreview(body: Uint8Array, maxBytes = DEAD_LETTER_BODY_PREVIEW_BYTES): { body: string; encoding: 'utf8' | 'base64'; shownBytes: number } {
  let end = Math.min(body.length, maxBytes);
  // Back up to the first byte of a character, so a multi-byte one is not split by the cut.
  if (end < body.length) while (end > 0 && (body[end]! & 0xc0) === 0x80) end -= 1;
  const text = printableText(body.subarray(0, end));
  if (text !== undefined) return { body: text, encoding: 'utf8', shownBytes: end };
  const shown = body.subarray(0, Math.min(body.length, maxBytes));
  return { body: Buffer.from(shown.buffer, shown.byteOffset, shown.length).toString('base64'), encoding: 'base64', shownBytes: shown.length };
}

/** A headers-only read carries the body's size in a header; a full read has the body. */
function storedBodyBytes(found: StoredDeadLetter): number {
  const size = Number(found.headers?.get(MSG_SIZE_HEADER) || NaN);
  return Number.isSafeInteger(size) && size >= 0 ? size : found.data.length;
}

function headerPairs(headers: MsgHdrs | undefined): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (!headers) return pairs;
  for (const [key, values] of headers) for (const value of values) pairs.push([key, value]);
  return pairs;
}
