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

t.test('set once the process runs, it takes effect: the same garbage takes more full collections', async (t) => {
  const own = await majorCollections();
  const fixed = await majorCollections(50);
  t.ok(own > 0, `V8's own factor: ${own} full collections`);
  // V8 lets the old generation grow up to 4× what survived; at 50 % it collects several times as often.
  t.ok(fixed >= 2 * own, `heap_growing_percent=50: ${fixed} full collections, against ${own}`);
});
