import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { availableParallelism } from 'node:os';
import { heapGrowingFlag, scavengerFlag } from '../../../src/cli/heap-policy.js';

t.test('heap_growing_percent becomes V8 --heap-growing-percent, unless node was started with one', async (t) => {
  t.equal(heapGrowingFlag({ heapGrowingPercent: 50 }, []), '--heap-growing-percent=50');
  t.equal(heapGrowingFlag({ heapGrowingPercent: 0 }, ['--max-semi-space-size=4']), '--heap-growing-percent=0', '0: V8 picks the factor');
  t.equal(heapGrowingFlag({ heapGrowingPercent: 50 }, ['--heap-growing-percent=200']), undefined);
  t.equal(heapGrowingFlag({ heapGrowingPercent: 50 }, ['--heap_growing_percent=200']), undefined, 'V8 takes either spelling');
});

const compiled = import.meta.url.endsWith('.js');
const churn = fileURLToPath(new URL(`../../helpers/heap-churn.${compiled ? 'js' : 'ts'}`, import.meta.url));

/** Full collections a child process needed for the same garbage, with `percent` applied at run time (none: V8's factor). */
async function majorCollections(percent?: number): Promise<number> {
  const args = [...(compiled ? [] : ['--import', import.meta.resolve('tsx')]), churn, ...(percent === undefined ? [] : [String(percent)])];
  const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: 60_000 });
  return (JSON.parse(stdout) as { majors: number }).majors;
}

t.test('set once the process runs, it takes effect: the same garbage takes more full collections at a lower percent', async (t) => {
  // Two fixed factors: V8's own factor weighs its collector's speed against the program's, so its
  // count moves with how busy the box is (8–10 here alone, 11 with the suite on four jobs).
  const loose = await majorCollections(200);
  const tight = await majorCollections(50);
  t.ok(loose > 0, `heap_growing_percent=200: ${loose} full collections`);
  // Unapplied, both would run on V8's own factor and count about the same.
  t.ok(tight >= 2 * loose, `heap_growing_percent=50: ${tight} full collections, against ${loose} at 200`);
});

t.test("the gateway scavenges on one thread, unless node was started with the flag either way; the worker keeps V8's scavenger", async (t) => {
  t.equal(scavengerFlag('gateway', []), '--no-parallel-scavenge');
  t.equal(scavengerFlag('gateway', ['--max-semi-space-size=2']), '--no-parallel-scavenge');
  t.equal(scavengerFlag('gateway', ['--parallel-scavenge']), undefined, 'an operator who wants the parallel scavenger says so');
  t.equal(scavengerFlag('gateway', ['--no-parallel_scavenge']), undefined, 'V8 takes either spelling');
  t.equal(scavengerFlag('worker', []), undefined);
  t.equal(scavengerFlag('up', []), undefined);
});

const threads = fileURLToPath(new URL(`../../helpers/scavenge-threads.${compiled ? 'js' : 'ts'}`, import.meta.url));

/** The scavenges of a child running `command`'s policy, each with the ms its helper threads spent in it. */
async function scavengesOf(command: string): Promise<number[]> {
  const args = ['--trace-gc-nvp', '--max-semi-space-size=2', ...(compiled ? [] : ['--import', import.meta.resolve('tsx')]), threads, command];
  const { stdout } = await promisify(execFile)(process.execPath, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((line) => line.includes(' gc=s '))
    .map((line) => Number(/background\.scavenge\.parallel=([\d.]+)/.exec(line)?.[1] ?? Number.NaN));
}

t.test('set once the process runs, it takes effect: no scavenge of the gateway has helper threads', async (t) => {
  const gateway = await scavengesOf('gateway');
  t.ok(gateway.length >= 5, `${gateway.length} scavenges`);
  t.same(
    gateway.filter((ms) => ms !== 0),
    [],
    'none spent time on a helper thread',
  );
  // With one core V8 runs the scavenger on the main thread anyway: the comparison needs two.
  if (availableParallelism() > 1) {
    const worker = await scavengesOf('worker');
    t.ok(
      worker.some((ms) => ms > 0),
      "the worker's scavenges do use helper threads (this machine has them)",
    );
  }
});
