import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, buildConnector as BuildConnector, Dispatcher } from 'undici';

/**
 * undici's Agent, connector builder and request API, each loaded from its own module on first use.
 *
 * - *Their own modules:* `import 'undici'` loads the whole package (fetch, WebSocket,
 *   EventSource, the HTTP cache, the mock agents, a second HTTP parser): about 10 MiB of RSS that
 *   asyncfn, which only dispatches through an Agent, never uses (measured: `node -e
 *   "require('undici')"` 61 MiB, the agent module alone 51 MiB, bare node 40). undici has no
 *   `exports` map, and its major version is pinned in package.json.
 * - *On first use:* the worker's plain `http:` calls never reach undici (./h1/agent.ts), so a
 *   worker whose functions and callbacks are all `http:` never loads it. An idle worker settled
 *   ~1 MiB lower without it (BENCHMARKS.md, "undici loaded on first use").
 */
const load = createRequire(import.meta.url);

let agent: typeof UndiciAgent | undefined;
let connector: typeof BuildConnector | undefined;
let requestApi: ((this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>) | undefined;

/** undici's Agent class, loaded now if it was not yet. */
export function undiciAgent(): typeof UndiciAgent {
  return (agent ??= load('undici/lib/dispatcher/agent.js') as typeof UndiciAgent);
}

/** undici's `buildConnector`, loaded now if it was not yet. */
export function undiciBuildConnector(): typeof BuildConnector {
  return (connector ??= load('undici/lib/core/connect.js') as typeof BuildConnector);
}

/**
 * `undici.request(url, { ...opts, dispatcher })` from these parts alone: the call undici's own
 * `request` makes on the dispatcher once it has split the URL into origin and path (what
 * `Dispatcher.prototype.request` is once the whole package is loaded).
 */
export function requestVia(
  dispatcher: Pick<Dispatcher, 'dispatch'>,
  url: string,
  opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>,
): Promise<Dispatcher.ResponseData> {
  requestApi ??= load('undici/lib/api/api-request.js') as NonNullable<typeof requestApi>;
  const { origin, pathname, search } = new URL(url);
  return requestApi.call(dispatcher as Dispatcher, { ...opts, origin, path: search ? `${pathname}${search}` : pathname });
}
