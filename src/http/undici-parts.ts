import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, buildConnector as undiciBuildConnector, Dispatcher } from 'undici';

/**
 * undici's Agent and connector builder, loaded from their own modules. `import 'undici'` loads the
 * whole package (fetch, WebSocket, EventSource, the HTTP cache, the mock agents, a second HTTP
 * parser): about 10 MiB of RSS that a worker, which only dispatches through an Agent, never uses
 * (measured: `node -e "require('undici')"` 61 MiB, the agent module alone 51 MiB, bare node 40).
 * undici has no `exports` map, and its major version is pinned in package.json.
 */
const load = createRequire(import.meta.url);

export const Agent = load('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
export const buildConnector = load('undici/lib/core/connect.js') as typeof undiciBuildConnector;

/** undici's request API (what `Dispatcher.prototype.request` is once the whole package is loaded). */
const requestApi = load('undici/lib/api/api-request.js') as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;

/**
 * `undici.request(url, { ...opts, dispatcher })` from these parts alone: the call undici's own
 * `request` makes on the dispatcher once it has split the URL into origin and path.
 */
export function requestVia(dispatcher: Dispatcher, url: string, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>): Promise<Dispatcher.ResponseData> {
  const { origin, pathname, search } = new URL(url);
  return requestApi.call(dispatcher, { ...opts, origin, path: search ? `${pathname}${search}` : pathname });
}
