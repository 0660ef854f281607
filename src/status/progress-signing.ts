import { createHmac, timingSafeEqual } from 'node:crypto';
import { ProgressExpiredError, ProgressSignatureError } from '../errors.js';
import { PROGRESS_URL_HEADER } from '../functions/invoke.js';

export { PROGRESS_URL_HEADER };

/*
 * Progress URLs: `<gateway>/async-function/<call-id>/progress?exp=<unix s>&sig=<HMAC>`. The worker
 * signs one per attempt and passes it to the function as X-Asyncfn-Progress-Url; the gateway
 * checks it. The signature is the only credential: a function holds no gateway credentials, and
 * the URL lets it write the progress of its own call id and nothing else, until it expires.
 *
 * sig = base64url(HMAC-SHA256(key, "asyncfn-progress-v1\n" + callId + "\n" + exp)). The prefix
 * keeps these signatures apart from anything else the key might ever sign; the newline keeps
 * (callId, exp) pairs apart (a call id holds no newline, exp only digits).
 */

/** The path after `/async-function/<call-id>`. */
export const PROGRESS_PATH = '/progress';
/**
 * Added to the attempt's own timeout to make the expiry, ms: a report sent just before the
 * timeout still arrives in time, and clocks of worker and gateway may differ by this much.
 */
export const PROGRESS_URL_MARGIN_MS = 60_000;

const DOMAIN = 'asyncfn-progress-v1';
const EXP = /^\d{1,12}$/;
/** base64url of 32 bytes, no padding. */
const SIG = /^[A-Za-z0-9_-]{43}$/;

/** The signature of (callId, exp): base64url, 43 characters. */
export function progressSignature(key: Uint8Array, callId: string, expSeconds: number): string {
  return createHmac('sha256', key).update(`${DOMAIN}\n${callId}\n${expSeconds}`, 'utf8').digest('base64url');
}

/**
 * The progress URL of `callId` under `baseUrl` (the gateway's public URL, no trailing slash
 * needed), valid until `expiresAtMs` (unix ms, rounded up to a whole second).
 */
export function progressUrl(baseUrl: string, key: Uint8Array, callId: string, expiresAtMs: number): string {
  const exp = Math.ceil(expiresAtMs / 1000);
  const base = baseUrl.endsWith('/') ? baseUrl.slice(0, -1) : baseUrl;
  return `${base}/async-function/${callId}${PROGRESS_PATH}?exp=${exp}&sig=${progressSignature(key, callId, exp)}`;
}

/** Signs one attempt's progress URL (InvokeFunctionDeps.progressUrl); undefined = no URL for it. */
export type ProgressUrlSigner = (callId: string, attemptEndsAtMs: number) => string | undefined;

/**
 * The worker's signer: a URL under the base URL `baseUrl` gives (undefined: none yet, no URL)
 * that expires PROGRESS_URL_MARGIN_MS after the attempt's own deadline.
 */
export function progressUrlSigner(baseUrl: () => string | undefined, key: Uint8Array): ProgressUrlSigner {
  return (callId, attemptEndsAtMs) => {
    const base = baseUrl();
    return base === undefined ? undefined : progressUrl(base, key, callId, attemptEndsAtMs + PROGRESS_URL_MARGIN_MS);
  };
}

/** The `exp` and `sig` of a progress URL's query, as received. */
export interface ProgressCredentials {
  readonly exp: string | undefined;
  readonly sig: string | undefined;
}

/**
 * Checks a progress URL's signature for `callId`, then its expiry, at `nowMs` (unix ms). Throws
 * ProgressSignatureError (403) for a missing, malformed or wrong signature, a signature made for
 * another call id or another expiry included; ProgressExpiredError (403) for a genuine URL past
 * its expiry. The comparison takes the same time whatever bytes differ.
 */
export function verifyProgressUrl(key: Uint8Array, callId: string, given: ProgressCredentials, nowMs: number): void {
  if (given.exp === undefined || given.sig === undefined) throw new ProgressSignatureError('exp and sig are both required: POST to the URL the worker gave, as it is');
  if (!EXP.test(given.exp)) throw new ProgressSignatureError('exp is not a unix time in seconds');
  if (!SIG.test(given.sig)) throw new ProgressSignatureError('sig is not a signature');
  const expected = Buffer.from(progressSignature(key, callId, Number(given.exp)), 'base64url');
  if (!timingSafeEqual(expected, Buffer.from(given.sig, 'base64url'))) {
    throw new ProgressSignatureError(`the signature does not match call id "${callId}" and exp`);
  }
  const expMs = Number(given.exp) * 1000;
  if (expMs < nowMs) throw new ProgressExpiredError(new Date(expMs).toISOString());
}
