import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CrossSiteError } from '../../errors.js';
import { sendError } from '../http-errors.js';
import { routeGroup } from './hook.js';

/** Methods that only read. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses admin requests that change state (cancel, replay, purge…) when a browser sends them for
 * a page of another site: cross-site request forgery. Without `basic_auth` (the default, and what
 * `asyncfn up` runs on loopback) nothing else would stop a page open in the operator's browser
 * from posting `/system/invocations/cancel?all=true`, a request the browser sends without asking
 * (no body, so no CORS preflight); with it, a browser may add cached credentials on its own.
 *
 * Browsers say where a request comes from: `Sec-Fetch-Site` (every current one), and `Origin` on
 * a POST or DELETE. A request of the console itself is `same-origin`; a client that is no web page
 * (curl, the CLI, a server) sends neither and is not refused.
 */
function crossSiteSource(headers: FastifyRequest['headers']): string | undefined {
  const site = headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return `Sec-Fetch-Site: ${site}`;
  if (site === 'same-origin' || site === 'none') return undefined;
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  const host = headers.host;
  let originHost: string | undefined;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = undefined; // "null" (a sandboxed page, a file) or garbage: no site of ours
  }
  return originHost !== undefined && originHost === host ? undefined : `Origin: ${origin.slice(0, 100)}`;
}

/** Installs the check for every admin route (see auth/hook.ts, `routeGroup`). */
export function installCrossSiteGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    if (SAFE_METHODS.has(request.method)) return;
    if (routeGroup(request.method, request.routeOptions.url, request.raw.url) !== 'admin') return;
    const source = crossSiteSource(request.headers);
    if (source !== undefined) return sendError(reply, new CrossSiteError(source));
  });
}
