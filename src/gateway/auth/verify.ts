import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Checking credentials without leaking them through timing. Every secret and every candidate is
 * first reduced to an HMAC-SHA256 digest under a key drawn at startup, so the comparison is always
 * between two 32-byte buffers (timingSafeEqual): neither a secret's length nor the position of the
 * first wrong byte shows in the response time. Every expected value is compared, without an early
 * exit, so which part was wrong (user or password, which token) does not show either.
 */

/** What checking an Authorization header found. */
export type Verdict = 'ok' | 'missing' | 'invalid';

/** One scheme's check of the Authorization header. */
export interface Authenticator {
  /** The scheme named in `WWW-Authenticate`. */
  readonly scheme: 'Basic' | 'Bearer';
  verify(authorization: string | undefined): Verdict;
}

/** The realm named in every `WWW-Authenticate` challenge. */
export const REALM = 'asyncfn';

const digestKey = randomBytes(32);

function digest(value: string): Buffer {
  return createHmac('sha256', digestKey).update(value, 'utf8').digest();
}

/** True if `candidate` equals any of `expected`, comparing every one of them. */
function matchesAny(candidate: string, expected: readonly Buffer[]): boolean {
  const d = digest(candidate);
  let matched = false;
  for (const e of expected) matched = timingSafeEqual(d, e) || matched;
  return matched;
}

/** The credentials of `Authorization: <scheme> <credentials>`; undefined for another scheme. */
function credentialsOf(authorization: string, scheme: string): string | undefined {
  const space = authorization.indexOf(' ');
  if (space === -1 || authorization.slice(0, space).toLowerCase() !== scheme.toLowerCase()) return undefined;
  return authorization.slice(space + 1).trim();
}

/** Splits Basic credentials (RFC 7617: base64 of "user:password", the user holds no colon). */
export function parseBasic(authorization: string): { user: string; password: string } | undefined {
  const encoded = credentialsOf(authorization, 'Basic');
  if (encoded === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The token of `Authorization: Bearer <token>` (RFC 6750 token68). */
export function parseBearer(authorization: string): string | undefined {
  const token = credentialsOf(authorization, 'Bearer');
  return token !== undefined && /^[A-Za-z0-9\-._~+/]+=*$/.test(token) ? token : undefined;
}

/** Basic auth against one user/password pair (OpenFaaS: basic-auth-user, basic-auth-password). */
export function basicAuthenticator(user: string, password: string): Authenticator {
  const expectedUser = [digest(user)];
  const expectedPassword = [digest(password)];
  return {
    scheme: 'Basic',
    verify: (authorization) => {
      if (authorization === undefined || authorization === '') return 'missing';
      const given = parseBasic(authorization);
      if (!given) return 'invalid';
      // Both halves are always compared: `&&` would skip the password when the user is wrong.
      const userOk = matchesAny(given.user, expectedUser);
      const passwordOk = matchesAny(given.password, expectedPassword);
      return userOk && passwordOk ? 'ok' : 'invalid';
    },
  };
}

/** Bearer tokens, any of which is accepted (several during a rotation). */
export function bearerAuthenticator(tokens: readonly string[]): Authenticator {
  if (tokens.length === 0) throw new Error('bearerAuthenticator needs at least one token');
  const expected = tokens.map(digest);
  return {
    scheme: 'Bearer',
    verify: (authorization) => {
      if (authorization === undefined || authorization === '') return 'missing';
      const token = parseBearer(authorization);
      return token !== undefined && matchesAny(token, expected) ? 'ok' : 'invalid';
    },
  };
}

/** The `WWW-Authenticate` value of a 401 (RFC 7617 §2, RFC 6750 §3). */
export function challenge(authenticator: Authenticator, verdict: Exclude<Verdict, 'ok'>): string {
  if (authenticator.scheme === 'Basic') return `Basic realm="${REALM}"`;
  return verdict === 'invalid' ? `Bearer realm="${REALM}", error="invalid_token"` : `Bearer realm="${REALM}"`;
}
