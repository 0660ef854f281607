import { randomUUID } from 'node:crypto';
import { BoundedMemo, shortKey } from '../bounded-memo.js';
import { BadRequestError } from '../errors.js';
import { confinePathSuffix } from '../functions/index.js';
import { CALL_ID_RULE, isCallId } from '../queue/call-id.js';

export { BadRequestError };

const ABSOLUTE_FORM_ORIGIN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** The parts of `/<prefix>/<name>[/<path>][?<query>]`, as received (path and query stay encoded). */
export interface InvocationTarget {
  readonly name: string;
  /** "" or "/a/b", percent-encoded as received. */
  readonly path: string;
  /** Raw query string without "?", "" when absent. */
  readonly query: string;
}

/**
 * Splits a raw request URL after `prefix` ("/function/" or "/async-function/"). The path suffix is
 * confined under the function's URL here, before anything resolves or stores it: a `..` (in any
 * encoding), an encoded slash, a backslash, … is a 400 PathRefusedError.
 */
export function parseInvocationTarget(rawUrl: string, prefix: string): InvocationTarget {
  // Absolute form ("GET http://host/function/x HTTP/1.1"): fastify routes it by its path, so the
  // name is read from the path too, not from a slice of "http://host".
  const origin = ABSOLUTE_FORM_ORIGIN.exec(rawUrl);
  if (origin) rawUrl = rawUrl.slice(origin[0].length);
  const q = rawUrl.indexOf('?');
  const pathname = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = q === -1 ? '' : rawUrl.slice(q + 1);
  const rest = pathname.slice(prefix.length);
  const slash = rest.indexOf('/');
  const name = slash === -1 ? rest : rest.slice(0, slash);
  if (name === '') throw new BadRequestError(`missing function name: expected ${prefix}<name>`);
  return { name, path: slash === -1 ? '' : confinePathSuffix(rest.slice(slash)), query };
}

/** OpenFaaS: a caller's X-Call-Id is kept; otherwise a new UUID. */
export function callIdFrom(header: string | string[] | undefined): string {
  return callerCallIdFrom(header) ?? randomUUID();
}

/** The caller's X-Call-Id, validated; undefined when none was sent. */
export function callerCallIdFrom(header: string | string[] | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  const value = Array.isArray(header) ? header[0]! : header;
  if (!isCallId(value)) {
    throw new BadRequestError(`X-Call-Id must be ${CALL_ID_RULE}`);
  }
  return value;
}

/**
 * Valid callback URLs read before, as sent → as normalised: callers name the same few receivers,
 * and each parse costs as much as the rest of the header checks. An invalid one throws, so it is
 * never kept: it is refused each time.
 */
const CALLBACK_URLS = new BoundedMemo(parseCallbackUrl, { max: 1_024, keep: shortKey(256) });

/** X-Callback-Url must be an absolute http(s) URL; undefined when absent. */
export function callbackUrlFrom(header: string | string[] | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  if (Array.isArray(header)) throw new BadRequestError('X-Callback-Url must be given once');
  return CALLBACK_URLS.get(header);
}

function parseCallbackUrl(header: string): string {
  let url: URL;
  try {
    url = new URL(header);
  } catch {
    throw new BadRequestError('X-Callback-Url is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BadRequestError(`X-Callback-Url must use http or https, not ${url.protocol.slice(0, -1)}`);
  }
  return url.toString();
}
