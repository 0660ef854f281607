import type { FastifyRequest } from 'fastify';
import { endToEndHeaders, isReservedHeader, type HeaderPairs, type IncomingHeaders } from '../http/headers.js';
import { BoundedMemo, shortKey } from '../bounded-memo.js';
import { authorizationConsumed } from './auth/index.js';

/** Whether a name is reserved, for the names seen before (every request's go through here). */
const RESERVED = new BoundedMemo(isReservedHeader, { max: 1_024, keep: shortKey(128) });

/** What a forwarded name must not be (names arrive lower-cased): reserved, or Authorization when consumed. */
const forwardable = (name: string): boolean => !RESERVED.get(name);
const forwardableWithoutAuthorization = (name: string): boolean => name !== 'authorization' && !RESERVED.get(name);

/**
 * The caller's headers that travel on to the function, sync or async, as OpenFaaS forwards them:
 * without hop-by-hop headers (and any the Connection header names), without reserved namespaces,
 * and without Authorization when asyncfn's own invoke auth consumed it.
 */
export function forwardedHeaders(request: FastifyRequest): HeaderPairs {
  return forwardedHeadersOf(request.headers, authorizationConsumed(request));
}

/** {@link forwardedHeaders} of a request's headers; `dropAuthorization` when invoke auth consumed it. */
export function forwardedHeadersOf(headers: IncomingHeaders, dropAuthorization: boolean): HeaderPairs {
  return endToEndHeaders(headers, dropAuthorization ? forwardableWithoutAuthorization : forwardable);
}
