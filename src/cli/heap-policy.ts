import { setFlagsFromString } from 'node:v8';
import type { RuntimeConfig } from '../config/index.js';

/**
 * How far V8's old generation grows between full collections: the `GOGC` of a Node process.
 *
 * After a full collection V8 sets the next one's threshold at what survived times a factor it
 * picks itself, up to 4× when collecting is cheap next to the program (a gateway or a worker
 * under load: ~22 MiB live, a threshold near 90 MiB). Everything between is garbage promoted
 * out of the young generation and still resident, so the peak RSS under load was mostly slack.
 * A fixed factor collects earlier: at 100 (the next full collection at twice the live heap),
 * `npm run bench` read ~50 MiB less peak RSS for the gateway and the worker, for no CPU
 * measurable (BENCHMARKS.md, "The old generation's slack"). `heap_growing_percent` is 50 by
 * default: ~7 MiB more off the gateway's peak for no CPU measurable, and ~7 MiB off a draining
 * worker's for twice as many full collections, ~3 % more CPU per invocation (BENCHMARKS.md,
 * "The worker's old generation at 1.5× its live heap").
 *
 * The flag is one V8 reads each time it sets a threshold, so setting it once the process runs
 * takes effect at the next full collection (Node keeps V8's flags writable after startup).
 */
const FLAG = /^--heap[-_]growing[-_]percent(=|$)/;

/** The V8 flag to set for `config`, or undefined when node's own command line already sets it (it wins). */
export function heapGrowingFlag(config: RuntimeConfig, execArgv: readonly string[]): string | undefined {
  if (execArgv.some((arg) => FLAG.test(arg))) return undefined;
  return `--heap-growing-percent=${config.heapGrowingPercent}`;
}

/** Applies `config` to this process's V8 heap; returns the flag set, if any (for the startup log). */
export function applyHeapPolicy(config: RuntimeConfig, execArgv: readonly string[] = process.execArgv): string | undefined {
  const flag = heapGrowingFlag(config, execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
  return flag;
}
