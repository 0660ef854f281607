import { setFlagsFromString } from 'node:v8';
import type { RuntimeConfig } from '../config/index.js';

/**
 * How far V8's old generation grows between full collections: the `GOGC` of a Node process.
 *
 * After a full collection V8 sets the next one's threshold at what survived times a factor it
 * picks itself, up to 4× when collecting is cheap next to the program (a gateway or a worker
 * under load: ~22 MiB live, a threshold near 90 MiB). Everything between is garbage promoted
 * out of the young generation and still resident, so the peak RSS under load was mostly slack.
 * A fixed factor (`heap_growing_percent`, 100 by default: the next full collection at twice the
 * live heap) collects earlier: in `npm run bench`, ~50 MiB less peak RSS for the gateway and the
 * worker for no CPU measurable; 50 takes ~12 MiB more off for up to ~10 % more CPU on the worker
 * (BENCHMARKS.md, "The old generation's slack"), and ~7 MiB off the gateway for none, which is
 * why `asyncfn gateway` defaults to 50 (src/cli/main.ts).
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
