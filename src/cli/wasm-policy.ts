import { setFlagsFromString } from 'node:v8';

/**
 * WebAssembly is compiled by V8's baseline compiler (Liftoff) only, never tiered up to TurboFan.
 *
 * The one WebAssembly module an asyncfn process runs is undici's HTTP/1.1 parser (llhttp), which
 * parses every answer of the worker's function calls and callbacks and of the gateway's sync
 * proxy. V8 compiles it with Liftoff and, once it is hot (~600 answers in), compiles its main
 * function again with TurboFan: 0.27–0.53 s of a helper thread's CPU and a ~30 MB compiler zone,
 * of which glibc keeps ~8–10 MiB resident in that thread's malloc arena for the life of the
 * process. Liftoff's code parses these short answers about as fast (a warm exchange's CPU per call
 * did not move measurably), so a draining worker's peak RSS is 9–17 MiB lower, and the compile is
 * not paid at all (BENCHMARKS.md, "undici's parser compiled twice").
 *
 * V8 reads the flag when it compiles a module, and undici compiles llhttp on its first connection,
 * so setting it as the process starts covers it.
 */
const FLAG = /^--(no-)?liftoff[-_]only$/;

/** The V8 flag to set, or undefined when node's own command line names it (it wins). */
export function wasmTierFlag(execArgv: readonly string[]): string | undefined {
  return execArgv.some((arg) => FLAG.test(arg)) ? undefined : '--liftoff-only';
}

/** Applies the policy to this process; returns the flag set, if any (for the startup log). */
export function applyWasmPolicy(execArgv: readonly string[] = process.execArgv): string | undefined {
  const flag = wasmTierFlag(execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
  return flag;
}
