import t from 'tap';
import { collectedInstructions, instructionsPerOp } from '../../bench/callgrind.js';

t.test("the count is read from callgrind's summary line", async (t) => {
  const stderr = [
    '==15546== Callgrind, a call-graph generating cache profiler',
    '==15546== Command: node piece.js',
    '==15546== ',
    '==15546== Events    : Ir',
    '==15546== Collected : 1045762587',
    '==15546== ',
    '==15546== I   refs:      1,045,762,587',
  ].join('\n');
  t.equal(collectedInstructions(stderr), 1_045_762_587);
  t.throws(() => collectedInstructions('==1== Command: node piece.js\nError: boom'), /no "Collected" line/, 'a run that counted nothing is an error');
});

t.test('instructions per op: the difference of two runs over the difference of their ops', async (t) => {
  // Start and warm-up cost the same in both runs, so they cancel.
  t.equal(instructionsPerOp({ ops: 20_000, instructions: 1_045_762_587 }, { ops: 40_000, instructions: 1_430_296_007 }), 19_226.671);
  t.throws(() => instructionsPerOp({ ops: 10, instructions: 5 }, { ops: 10, instructions: 9 }), /more operations/);
});
