import t from 'tap';
import { fileURLToPath } from 'node:url';
import { PIECES } from '../../bench/instruction-pieces.js';

// `npm run bench:instructions` needs valgrind, which CI does not install; each piece runs here
// without it, from this build's compiled tree, so that a piece whose modules changed under it
// fails here instead of in the next person's count: a missing export, a head not read, a machine
// that does not end in `acked`, a request not accepted.
const distRoot = fileURLToPath(new URL('../../../', import.meta.url));

for (const [name, piece] of Object.entries(PIECES)) {
  t.test(`the ${name} piece runs on this build`, async (t) => {
    const run = await piece.load(distRoot);
    await run(200);
    t.pass(piece.description);
  });
}
