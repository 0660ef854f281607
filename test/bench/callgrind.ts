/**
 * Instruction counts from valgrind's callgrind, for `npm run bench:instructions`
 * (./instructions.ts). A count of instructions is the same from run to run whatever else the
 * machine is doing, where a CPU time on this shared 2-core box swings twofold within a day; so a
 * change of a microsecond in one piece can be told from noise (BENCHMARKS.md, "Instruction
 * counts"). What it does not see: cache misses, branch mispredictions and the kernel's work (a
 * system call counts as one instruction), so it ranks changes to JavaScript, and the wall-clock
 * rows of `npm run bench` stay the judge of the whole.
 */
import { execFile } from 'node:child_process';
import { onPath } from './processes.js';

/**
 * node's flags under callgrind: everything on the main thread (no concurrent compiler or
 * collector threads to interleave differently each run), no memory reducer (V8 starts it on a
 * timer, so when it runs depends on the wall clock: without this flag one count of the machine
 * in eight read 7 % high), and fixed seeds for the hash tables and Math.random. With them, six
 * counts of the machine run side by side agreed within 0.25 % per operation. Between two builds,
 * code changed around a piece moved its count by up to 1.5 % (where collections fall shifts), so
 * smaller differences between builds say nothing.
 */
export const DETERMINISTIC_NODE_FLAGS = ['--single-threaded', '--no-memory-reducer', '--hash-seed=1', '--random-seed=1'] as const;

/** One run of a piece: how many operations it ran and the instructions callgrind counted for the whole process. */
export interface Count {
  readonly ops: number;
  readonly instructions: number;
}

/** The instructions counted in callgrind's summary on stderr (`==123== Collected : 1045762587`). */
export function collectedInstructions(stderr: string): number {
  const match = /^==\d+== Collected : (\d+)$/m.exec(stderr);
  if (!match) throw new Error(`no "Collected" line in callgrind's output:\n${stderr.slice(-2_000)}`);
  return Number(match[1]);
}

/**
 * Instructions per operation once the piece is warm: the difference between two runs of the same
 * piece, which takes away node's start, the module loading and the JIT's warm-up (the first
 * run's operations pay for it, and the second run pays the same for its first as many).
 */
export function instructionsPerOp(fewer: Count, more: Count): number {
  if (more.ops <= fewer.ops) throw new Error(`the second run must do more operations (${fewer.ops}, ${more.ops})`);
  return (more.instructions - fewer.instructions) / (more.ops - fewer.ops);
}

/** Whether valgrind is on PATH (Debian: `apt-get install valgrind`). */
export function valgrindFound(): boolean {
  return onPath('valgrind');
}

/** Runs `node <args>` under callgrind with the deterministic flags; resolves with the instructions counted. */
export function countInstructions(args: readonly string[]): Promise<number> {
  const argv = ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, ...DETERMINISTIC_NODE_FLAGS, ...args];
  return new Promise((resolve, reject) => {
    execFile('valgrind', argv, { maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`valgrind ${argv.join(' ')} failed: ${error.message}\n${stderr.slice(-2_000)}`));
      else {
        try {
          resolve(collectedInstructions(stderr));
        } catch (err) {
          reject(err);
        }
      }
    });
  });
}
