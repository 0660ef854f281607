import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { wasmTierFlag } from '../../../src/cli/wasm-policy.js';

t.test('WebAssembly is compiled by Liftoff only, unless node was started with the flag either way', async (t) => {
  t.equal(wasmTierFlag([]), '--liftoff-only');
  t.equal(wasmTierFlag(['--max-semi-space-size=8']), '--liftoff-only');
  t.equal(wasmTierFlag(['--no-liftoff-only']), undefined, 'an operator who wants TurboFan for it says so');
  t.equal(wasmTierFlag(['--liftoff_only']), undefined, 'V8 takes either spelling');
  t.equal(wasmTierFlag(['--no-liftoff_only']), undefined);
});

const compiled = import.meta.url.endsWith('.js');
const child = fileURLToPath(new URL(`../../helpers/llhttp-tiering.${compiled ? 'js' : 'ts'}`, import.meta.url));

/** How many WebAssembly functions a child compiled with each compiler while making `exchanges` HTTP exchanges through undici. */
async function compilesOf(withPolicy: boolean, exchanges: number): Promise<{ liftoff: number; turbofan: number }> {
  const args = [
    '--trace-wasm-compilation-times',
    ...(compiled ? [] : ['--import', import.meta.resolve('tsx')]),
    child,
    withPolicy ? 'policy' : 'none',
    String(exchanges),
  ];
  const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  const count = (compiler: string): number => stdout.split('\n').filter((line) => line.startsWith('Compiled function') && line.includes(`using ${compiler}`)).length;
  return { liftoff: count('Liftoff'), turbofan: count('TurboFan') };
}

t.test("set once the process runs, it takes effect: undici's parser is never tiered up to TurboFan", async (t) => {
  // V8 tiers llhttp's parse function up after ~600 answers; 6,000 leave its compile (≤ 0.6 s) time to finish before exit.
  const own = await compilesOf(false, 6_000);
  t.ok(own.turbofan > 0, `V8's own tiering: ${own.turbofan} functions compiled again by TurboFan`);
  const policy = await compilesOf(true, 6_000);
  t.ok(policy.liftoff > 0, `with the policy, ${policy.liftoff} functions compiled by Liftoff`);
  t.equal(policy.turbofan, 0, 'and none by TurboFan');
});
