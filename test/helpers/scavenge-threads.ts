/**
 * A child process for heap-policy.test.ts: applies the scavenger policy of the command in argv[2]
 * (`gateway`, `worker`) once it runs, then makes young garbage with survivors, so that V8 (run with
 * `--trace-gc-nvp`) reports each scavenge and the time its helper threads spent in it.
 */
import { applyScavengerPolicy } from '../../src/cli/heap-policy.js';

applyScavengerPolicy(process.argv[2] ?? 'worker', []);

const kept: Array<{ i: number; pair: number[] }> = [];
for (let i = 0; i < 2_000_000; i++) {
  kept.push({ i, pair: [i, i + 1] });
  if (kept.length > 40_000) kept.splice(0, 20_000);
}
process.stdout.write(`kept ${kept.length}\n`);
