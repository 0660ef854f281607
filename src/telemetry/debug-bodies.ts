/**
 * What `write_debug` logs of a request or response: bodies bounded and safe to print, headers
 * with their secrets redacted. OpenFaaS's queue-worker prints the message content with
 * write_debug; so does asyncfn, at info level, without leaking credentials into the logs.
 */

/** Bytes of a body `write_debug` logs; the rest is cut, with a marker saying how much there was. */
export const DEBUG_BODY_MAX_BYTES = 4096;

/** What stands in for a redacted header value (the logger's censor too). */
export const REDACTED = '[redacted]';

/**
 * Header names whose values are credentials: the usual ones, and any name that says secret,
 * token, password, signature, API key or credential (e.g. `X-Hub-Signature`, `X-Auth-Token`).
 */
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie)$|secret|token|passw(or)?d|signature|api[-_]?key|credential|session/i;

/** Query parameters of a URL whose values are credentials (a webhook's `?token=`, a signed URL's `sig`). */
const SECRET_PARAM = /secret|token|passw(or)?d|sig|api[-_]?key|credential|session|^key$|^auth/i;

/**
 * A URL with its credentials redacted: the password of its userinfo (all of a userinfo without
 * one: a token), and the values of query parameters named as secrets. For URLs shown to people
 * (a dead letter's callback URL); one that does not parse is shown as it is.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  let changed = false;
  if (parsed.password !== '') {
    parsed.password = REDACTED;
    changed = true;
  } else if (parsed.username !== '') {
    parsed.username = REDACTED;
    changed = true;
  }
  for (const name of [...parsed.searchParams.keys()]) {
    if (!SECRET_PARAM.test(name)) continue;
    parsed.searchParams.set(name, REDACTED);
    changed = true;
  }
  // Shown to people: the marker as the headers show it, not percent-encoded.
  return changed ? parsed.href.replaceAll(encodeURIComponent(REDACTED), REDACTED) : url;
}

/**
 * A raw query string (`a=1&api_key=x`, a leading `?` kept) with the values of the parameters named
 * as secrets redacted, by the rule {@link redactUrl} applies; every other parameter is left exactly
 * as it came (not re-encoded), so the line shows what the function got.
 */
export function redactQuery(query: string): string {
  if (query === '') return query;
  const lead = query.startsWith('?') ? '?' : '';
  return (
    lead +
    query
      .slice(lead.length)
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        const rawName = eq === -1 ? pair : pair.slice(0, eq);
        return SECRET_PARAM.test(decodedParam(rawName)) ? `${rawName}=${REDACTED}` : pair;
      })
      .join('&')
  );
}

/** A query parameter's name as URLSearchParams reads it (`+` a space, percent-decoded); as is if it does not decode. */
function decodedParam(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return raw;
  }
}

/** The caller's headers as one object for a log line; repeated ones as arrays, secrets redacted (the callback URL's too). */
export function redactHeaders(headers: ReadonlyArray<readonly [string, string]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [rawName, rawValue] of headers) {
    const name = rawName.toLowerCase();
    const value = SECRET_HEADER.test(name) ? REDACTED : name === 'x-callback-url' ? redactUrl(rawValue) : rawValue;
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else out[name] = Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
}

/** A body as a log field: UTF-8 text when it is printable text, base64 otherwise. */
export interface DebugBody {
  readonly body: string;
  /** Present when the body is not printable UTF-8 text (binary, or control characters). */
  readonly encoding?: 'base64';
  /** The body's whole length, bytes. */
  readonly bytes: number;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Control characters other than tab, CR and LF (C0, DEL, C1): a terminal would obey them
 * (`log_format=console`), so text with any of them is shown as base64.
 */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/**
 * At most `maxBytes` of `body`, cut at a character boundary and followed by
 * `…[truncated, N bytes in all]` when longer; invalid UTF-8 or control characters → base64.
 */
export function debugBody(body: Uint8Array, maxBytes = DEBUG_BODY_MAX_BYTES): DebugBody {
  let end = Math.min(body.length, maxBytes);
  // Back up to the first byte of a character, so a multi-byte one is not split by the cut.
  if (end < body.length) while (end > 0 && (body[end]! & 0xc0) === 0x80) end -= 1;
  const marker = end < body.length ? `…[truncated, ${body.length} bytes in all]` : '';
  const text = printableText(body.subarray(0, end));
  if (text !== undefined) return { body: text + marker, bytes: body.length };
  const shown = body.subarray(0, Math.min(body.length, maxBytes));
  const cut = shown.length < body.length ? `…[truncated, ${body.length} bytes in all]` : '';
  return { body: Buffer.from(shown.buffer, shown.byteOffset, shown.length).toString('base64') + cut, encoding: 'base64', bytes: body.length };
}

/** The bytes as text when they are strict UTF-8 without control characters (tab, CR, LF aside), else undefined. */
export function printableText(bytes: Uint8Array): string | undefined {
  try {
    const text = strictUtf8.decode(bytes);
    return CONTROL.test(text) ? undefined : text;
  } catch {
    return undefined;
  }
}

/** `{ <prefix>Body, <prefix>Bytes, <prefix>BodyEncoding? }` for a log line, e.g. requestBody. */
export function debugBodyFields(prefix: 'request' | 'response', body: Uint8Array): Record<string, string | number> {
  const { body: shown, encoding, bytes } = debugBody(body);
  return { [`${prefix}Body`]: shown, [`${prefix}Bytes`]: bytes, ...(encoding ? { [`${prefix}BodyEncoding`]: encoding } : {}) };
}
