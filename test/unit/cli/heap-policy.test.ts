import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { heapGrowingFlag } from '../../../src/cli/heap-policy.js';

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
