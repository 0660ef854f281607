import t, { type Test } from 'tap';
import { spawnAsyncfn, writeFunctionsFile } from '../helpers/asyncfn.js';
import { startNatsServer } from '../helpers/nats-server.js';

/**
 * `heap_growing_percent` as each long-running command applies it (src/cli/heap-policy.ts): 50
 * unless set, and a value set wins. And the WebAssembly policy both apply (src/cli/wasm-policy.ts).
 */

const WASM_POLICY_LOG = "WebAssembly (undici's HTTP parser) compiled by Liftoff only, not tiered up to TurboFan";

/** The V8 flag `command` logged that it set at start for its heap, after checking the one it set for WebAssembly. */
async function heapFlagOf(t: Test, command: 'gateway' | 'worker', env: Record<string, string> = {}): Promise<unknown> {
  const nats = await startNatsServer(t);
  const functionsFile = await writeFunctionsFile(t, { work: 'http://127.0.0.1:9' });
  const started = await spawnAsyncfn(
    t,
    command,
    { NATS_URL: nats.url, functions_file: functionsFile, log_level: 'debug', ...env },
    { unset: ['heap_growing_percent'].filter((name) => !(name in env)) },
  );
  const line = await started.waitForLog((l) => l.msg === 'heap growth between full collections (heap_growing_percent)', 'the heap policy it applied');
  const wasm = await started.waitForLog((l) => l.msg === WASM_POLICY_LOG, 'the WebAssembly policy it applied');
  t.equal(wasm.v8Flag, '--liftoff-only', `${command}: WebAssembly by Liftoff only`);
  await started.terminate();
  return line.v8Flag;
}

t.test('the gateway grows its old generation by 50 % between full collections unless told otherwise', async (t) => {
  t.equal(await heapFlagOf(t, 'gateway'), '--heap-growing-percent=50');
  t.equal(await heapFlagOf(t, 'gateway', { heap_growing_percent: '100' }), '--heap-growing-percent=100', 'a value set wins');
});

t.test('the worker by 50 % too, unless told otherwise', async (t) => {
  t.equal(await heapFlagOf(t, 'worker'), '--heap-growing-percent=50');
  t.equal(await heapFlagOf(t, 'worker', { heap_growing_percent: '100' }), '--heap-growing-percent=100', 'a value set wins');
});
