import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, buildConnector as undiciBuildConnector } from 'undici';

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
