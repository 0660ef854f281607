/**
 * A child process for wasm-policy.test.ts: with argv[2] `policy`, applies asyncfn's WebAssembly
 * policy (src/cli/wasm-policy.ts) first, as `asyncfn gateway` and `asyncfn worker` do; then makes
 * argv[3] HTTP exchanges with a local node:http server through undici, as the worker calls a
 * function (src/http/exchange.ts), four at a time, and exits. Node is started with V8's
 * --trace-wasm-compilation-times, which prints a line for each WebAssembly function it compiles
 * and with which compiler (Liftoff or TurboFan): the test reads those.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { Agent } from 'undici';
import { applyWasmPolicy } from '../../src/cli/wasm-policy.js';
import { exchange } from '../../src/http/exchange.js';

if (process.argv[2] === 'policy') applyWasmPolicy([]);
const exchanges = Number(process.argv[3]);

// The answer of a small function: a status line and a few headers, a short body.
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'x-duration-seconds': '0.001' }).end('{"ok":true}'));
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as { port: number };
const agent = new Agent({ connections: 4 });
const body = new TextEncoder().encode('{"n":1}');

let started = 0;
const caller = async (): Promise<void> => {
  while (started++ < exchanges) {
    const res = await exchange(agent, { url: `http://127.0.0.1:${port}/`, method: 'POST', headers: { 'content-type': 'application/json' }, body }, { timeoutMs: 10_000 });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  }
};
await Promise.all([caller(), caller(), caller(), caller()]);
await agent.close();
server.close();
