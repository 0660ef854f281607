import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository: the nearest directory above this file with package.json and deploy/. Tests run
 * compiled (`npm test` runs them from dist/test) or from their sources (`node --import tsx
 * test/….test.ts`), so no path is worked out from a test file's own place.
 */
export const REPO_ROOT = ((): string => {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'deploy'))) return dir;
  }
  throw new Error(`no repository above ${import.meta.dirname}`);
})();

/** Whether the tests run compiled (from dist/test): then so do the asyncfn processes they start. */
const RUNNING_COMPILED = import.meta.url.endsWith('.js');

/**
 * The node arguments that run the `asyncfn` command line, before its own arguments: when the tests
 * run compiled, the bundle that the image, `npm start` and the bin run (dist/bundle/main.js, which
 * `npm test` builds with `npm run bundle` beside `tsc`); the sources through tsx otherwise.
 * Absolute paths, so that any working directory works.
 */
export function asyncfnNodeArgs(): string[] {
  return RUNNING_COMPILED ? [join(REPO_ROOT, 'dist/bundle/main.js')] : sourceNodeArgs();
}

/**
 * The command line as modules, one file each: dist/src/cli/main.js from the same tsc run when the
 * tests run compiled, for a test of which modules a process loads (a bundle has its chunks instead).
 */
export function modulesNodeArgs(): string[] {
  return RUNNING_COMPILED ? [join(REPO_ROOT, 'dist/src/cli/main.js')] : sourceNodeArgs();
}

function sourceNodeArgs(): string[] {
  return ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'src/cli/main.ts')];
}
