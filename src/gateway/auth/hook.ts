import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../../errors.js';
import { sendError } from '../http-errors.js';
import { progressTargetOf } from '../progress-target.js';
import type { GatewayAuth } from './credentials.js';
import { challenge } from './verify.js';

/** Which credentials a route needs. */
export type RouteGroup = 'open' | 'admin' | 'invoke';

/**
 * Probes and metrics stay open: Kubernetes probes and Prometheus scrapes carry no credentials.
 * OpenFaaS does the same: its /healthz is never behind basic auth, and /metrics is served without
 * auth on a separate port (8082) meant for the internal network only.
 */
const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * The group of a request, by the route fastify matched (its pattern, not the raw URL, so that
 * `//system/x` or `/%73ystem/x` cannot dodge a check that the router would not dodge). Unmatched
 * requests (404) are open. Every other route is "admin" unless it invokes a function: a route added
 * later is protected by default (for instance a status route `GET /async-function/<call-id>`).
 */
export function routeGroup(method: string, routeUrl: string | undefined, rawUrl?: string): RouteGroup {
  if (routeUrl === undefined || OPEN_ROUTES.has(routeUrl)) return 'open';
  if (routeUrl.startsWith('/function/')) return 'invoke';
  if (routeUrl.startsWith('/async-function/') && method === 'POST') {
    // A progress report carries its own credential, the URL's signature, which the route checks:
    // the function that got the URL has no gateway credentials. It is never an invocation.
    return progressTargetOf(rawUrl) ? 'open' : 'invoke';
  }
  if (routeUrl.startsWith('/async-batch/') && method === 'POST') return 'invoke';
  return 'admin';
}

/** Requests whose Authorization header was asyncfn's own credential, checked by invoke auth. */
const consumed = new WeakSet<IncomingMessage>();

/**
 * True when invoke auth checked this request's Authorization header: it was asyncfn's credential,
 * not the function's, so it must not be forwarded to the function.
 */
export function authorizationConsumed(request: FastifyRequest): boolean {
  return consumed.has(request.raw);
}

/** Checks credentials before anything else runs; answers 401 with a challenge when they are missing or wrong. */
export function installAuth(app: FastifyInstance, auth: GatewayAuth): void {
  if (!auth.admin && !auth.invoke) return;
  app.addHook('onRequest', async (request, reply) => {
    const group = routeGroup(request.method, request.routeOptions.url, request.raw.url);
    const authenticator = group === 'admin' ? auth.admin : group === 'invoke' ? auth.invoke : undefined;
    if (!authenticator) return;
    const verdict = authenticator.verify(request.headers.authorization);
    if (verdict === 'ok') {
      if (group === 'invoke') consumed.add(request.raw);
      return;
    }
    // OpenFaaS answers "invalid credentials" with 401; the challenge tells clients which scheme to use.
    const setting = group === 'admin' ? 'basic_auth' : `invoke_auth=${authenticator.scheme.toLowerCase()}`;
    const reason = verdict === 'missing' ? `authentication required: send ${authenticator.scheme} credentials (${setting})` : 'invalid credentials';
    return sendError(reply.header('www-authenticate', challenge(authenticator, verdict)), new UnauthorizedError(reason));
  });
}
