/**
 * `npm run bench:instructions [-- --against <dist root>] [-- --only http.parse,machine]`: the
 * instructions each piece of ./instruction-pieces.ts costs once warm, counted by valgrind's
 * callgrind (./callgrind.ts). With `--against`, the same pieces of another build are counted in
 * the same run and each row shows the ratio: to compare a change with the commit before it,
 * build that commit in a worktree and pass its `dist`:
 *
 *     git worktree add /tmp/base HEAD~1 && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *     (cd /tmp/base && npx tsc -p .)
 *     npm run bench:instructions -- --against /tmp/base/dist
 *
 * Needs valgrind on PATH (Debian: `apt-get install valgrind`). Each count runs node under
 * callgrind (~15 s for node's start alone), two at a time; the whole takes 2–4 minutes.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countInstructions, instructionsPerOp, valgrindFound, type Count } from './callgrind.js';
import { PIECES } from './instruction-pieces.js';
import { formatTable, row, type Row } from './report.js';
import { progress } from './stack.js';
import { windowed } from './windowed.js';

const SECTION = 'instructions';
const here = dirname(fileURLToPath(import.meta.url));
const child = resolve(here, 'instruction-pieces.js');
/** This build's compiled tree (dist/), from dist/test/bench/. */
const ownRoot = resolve(here, '../..');

const { values } = parseArgs({ options: { against: { type: 'string' }, only: { type: 'string' } } });
if (!valgrindFound()) throw new Error('valgrind is not on PATH (Debian: apt-get install valgrind)');
const names = values.only?.split(',') ?? Object.keys(PIECES);
for (const name of names) if (!(name in PIECES)) throw new Error(`no piece ${name}; the pieces: ${Object.keys(PIECES).join(', ')}`);
const roots = values.against === undefined ? [ownRoot] : [ownRoot, resolve(values.against)];

/** Runs `jobs` two at a time (callgrind runs one thread; the box has two cores). */
async function twoAtATime<T>(jobs: ReadonlyArray<() => Promise<T>>): Promise<T[]> {
  const results: T[] = new Array<T>(jobs.length);
  await windowed(jobs.length, 2, async (i) => (results[i] = await jobs[i]!()));
  return results;
}

const started = performance.now();
const plan = names.flatMap((name) => roots.flatMap((root) => [1, 2].map((times) => ({ name, root, ops: PIECES[name]!.ops * times }))));
const counts = await twoAtATime(
  plan.map((job) => async (): Promise<Count> => {
    const instructions = await countInstructions([child, job.root, job.name, String(job.ops)]);
    progress(SECTION, `${job.name} × ${job.ops} (${job.root}): ${instructions.toLocaleString('en-US')} instructions`);
    return { ops: job.ops, instructions };
  }),
);
const perOp = (name: string, root: string): number => {
  const at = plan.findIndex((job) => job.name === name && job.root === root);
  return instructionsPerOp(counts[at]!, counts[at + 1]!);
};
const rows: Row[] = names.map((name) => {
  const value = perOp(name, ownRoot);
  const metric = `${PIECES[name]!.description}: instructions per op${roots.length > 1 ? ' vs the other build' : ''}`;
  return row(`instructions.${name}`, SECTION, metric, value, roots.length > 1 ? { limit: perOp(name, roots[1]!) } : {});
});
console.log(formatTable(rows));
console.log(`\nthis build: ${ownRoot}${roots.length > 1 ? `; the other: ${roots[1]!}` : ''}`);
console.log(`node ${process.version} under valgrind --tool=callgrind; took ${((performance.now() - started) / 1000).toFixed(0)} s`);
