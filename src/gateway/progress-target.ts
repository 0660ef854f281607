import type { ProgressCredentials } from '../status/progress-signing.js';

/**
 * `POST /async-function/<call-id>/progress?exp=…&sig=…` shares its route with invocations
 * (`POST /async-function/<name>/<path>`): what makes it a progress report is the path `/progress`
 * right after the first segment AND a `sig` parameter. Such a request is never an invocation,
 * whatever its signature: the auth hook lets it through on its signature alone (a function has no
 * gateway credentials), the route checks that signature, and no invocation can slip past invoke
 * auth by looking like one. The one thing it costs: a function cannot be invoked asynchronously on
 * the path `/progress` with a `sig` query parameter.
 */

/** A progress report's target: the call id and the signed query, as received. */
export interface ProgressTarget extends ProgressCredentials {
  readonly callId: string;
}

// An optional absolute-form origin ("POST http://host/async-function/..."), as fastify routes it.
const PROGRESS = /^(?:[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*)?\/async-function\/([^/?#]+)\/progress(?:\?(.*))?$/;

/** The progress report a raw request URL names, or undefined when it is no progress report. */
export function progressTargetOf(rawUrl: string | undefined): ProgressTarget | undefined {
  // Every async POST passes here: the substring test keeps the regex off the common path.
  if (rawUrl === undefined || !rawUrl.includes('/progress')) return undefined;
  const match = PROGRESS.exec(rawUrl);
  if (!match) return undefined;
  const params = new URLSearchParams(match[2] ?? '');
  const sig = params.get('sig');
  if (sig === null) return undefined;
  return { callId: match[1]!, exp: params.get('exp') ?? undefined, sig };
}
