import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * `console_dir`'s default: `dist/console` in asyncfn's own package (where `npm run build` writes
 * the console), found from both src/config/ (tsx) and dist/src/config/ (the built CLI), so that
 * it does not depend on the working directory the CLI was started in.
 */
export const DEFAULT_CONSOLE_DIR: string = (() => {
  for (const rel of ['../../', '../../../']) {
    const root = new URL(rel, import.meta.url);
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { name?: string };
      if (pkg.name === 'asyncfn') return fileURLToPath(new URL('dist/console', root));
    } catch {
      // try the next candidate
    }
  }
  return fileURLToPath(new URL('../../dist/console', import.meta.url));
})();
