import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ConsoleAsset, ConsoleAssets } from '../console/assets.js';

export interface ConsoleRouteDeps {
  readonly assets: ConsoleAssets;
  /** `console_trace_url`: the invocation page's trace link, with `{call_id}`; "" = no link. */
  readonly traceUrlTemplate: string;
}

/** The console's path prefix; vite builds it with `base: '/ui/'`. */
export const CONSOLE_PREFIX = '/ui';

/**
 * Everything the console loads comes from this origin and nothing runs inline: a script injected
 * into a rendered value (a function name, a header) has nowhere to load from and cannot run.
 */
export const CONSOLE_CSP = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/**
 * The web console (admin routes: behind `basic_auth`, as every `/system/*` route, by
 * src/gateway/auth's default group):
 * - `GET /ui`, `/ui/`, and any `/ui/<page>` that is no file → index.html (client-side routes);
 * - `GET /ui/assets/…` → the built files, held in memory since startup;
 * - `GET /ui/config.json` → what the page needs of the configuration (`{traceUrlTemplate}`).
 * Registered only when `console` is on: off, the console costs nothing.
 */
export async function consoleRoutes(app: FastifyInstance, deps: ConsoleRouteDeps): Promise<void> {
  const settings = JSON.stringify({ traceUrlTemplate: deps.traceUrlTemplate });
  const send = (reply: FastifyReply, asset: ConsoleAsset): FastifyReply =>
    securityHeaders(reply).header('content-type', asset.contentType).header('cache-control', asset.cacheControl).send(asset.body);

  app.get(CONSOLE_PREFIX, async (_request, reply) => send(reply, deps.assets.index));
  app.get(`${CONSOLE_PREFIX}/config.json`, async (_request, reply) =>
    securityHeaders(reply).header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').send(settings),
  );
  app.get<{ Params: { '*': string } }>(`${CONSOLE_PREFIX}/*`, async (request, reply) => {
    const path = request.params['*'];
    const asset = deps.assets.files.get(path);
    if (asset) return send(reply, asset);
    // A missing build file is a 404 (a stale page asking for an old hash), not the page itself.
    if (path.startsWith('assets/')) return securityHeaders(reply).code(404).header('content-type', 'text/plain; charset=utf-8').send('not found');
    return send(reply, deps.assets.index);
  });
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .header('x-frame-options', 'DENY');
}
