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
export function heapGrowingFlag(config: Pick<RuntimeConfig, 'heapGrowingPercent'>, execArgv: readonly string[]): string | undefined {
  if (execArgv.some((arg) => FLAG.test(arg))) return undefined;
  return `--heap-growing-percent=${config.heapGrowingPercent}`;
}

/** Applies `config` to this process's V8 heap; returns the flag set, if any (for the startup log). */
export function applyHeapPolicy(config: Pick<RuntimeConfig, 'heapGrowingPercent'>, execArgv: readonly string[] = process.execArgv): string | undefined {
  const flag = heapGrowingFlag(config, execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
  return flag;
}

/**
 * The gateway scavenges its young generation on one thread (`--no-parallel-scavenge`).
 *
 * Its young generation is small (the Deployment's `--max-semi-space-size=2`, deploy/kubernetes/base
 * and deploy/compose.yaml) and little of it survives a scavenge (~15 B promoted per `202`): on one
 * thread a scavenge is short, where the parallel scavenger's helpers wait for cores that a busy
 * gateway's box gives to its load and to nats-server. Measured with the gateway's semi-spaces of 2
 * MiB, against the image's 8 MiB and parallel scavenges: 77–79 MiB at its peak under load against
 * 91–93, for ~8 % more CPU per `202` (`npm run bench` both ways in alternation; BENCHMARKS.md,
 * "The gateway's young generation both ways in the same bench"). V8 reads the flag at each
 * scavenge, so setting it once the process runs takes effect.
 * The worker keeps V8's parallel scavenger: its young generation is 8 MiB, and a draining
 * worker's scavenges copy its invocations in flight.
 */
const SCAVENGE_FLAG = /^--(no-)?parallel[-_]scavenge$/;

/** The V8 flag to set for `command`, or undefined (not the gateway, or node's own command line names it: it wins). */
export function scavengerFlag(command: string, execArgv: readonly string[]): string | undefined {
  if (command !== 'gateway' || execArgv.some((arg) => SCAVENGE_FLAG.test(arg))) return undefined;
  return '--no-parallel-scavenge';
}

/** Applies the scavenger policy of `command` to this process; returns the flag set, if any (for the startup log). */
export function applyScavengerPolicy(command: string, execArgv: readonly string[] = process.execArgv): string | undefined {
  const flag = scavengerFlag(command, execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
  return flag;
}
