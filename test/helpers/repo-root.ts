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
 * The node arguments that run the `asyncfn` command line, before its own arguments: the compiled
 * dist/src/cli/main.js when the tests run compiled (the same tsc run built both), the sources
 * through tsx otherwise. Absolute paths, so that any working directory works.
 */
export function asyncfnNodeArgs(): string[] {
  return RUNNING_COMPILED ? [join(REPO_ROOT, 'dist/src/cli/main.js')] : ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, 'src/cli/main.ts')];
}
