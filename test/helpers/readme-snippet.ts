import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from './asyncfn.js';

/** The README's plain-Node receiver check (section "Signed callbacks"). */
export type VerifyCallback = (body: Uint8Array, headers: Record<string, string | string[] | undefined>, secret: string, nowSeconds?: number) => boolean;

const MARKER = '<!-- verify-callback snippet:';

/**
 * Runs the README's code block itself, not a copy of it: the block after the marker comment is
 * imported as an ES module, so what readers paste is exactly what the tests exercise.
 */
export async function loadVerifySnippet(): Promise<{ code: string; verifyCallback: VerifyCallback }> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  if (at === -1) throw new Error(`README.md has no "${MARKER}" marker`);
  const block = /```js\n([\s\S]*?)\n```/.exec(readme.slice(at));
  if (!block) throw new Error('README.md has no ```js block after the verify-callback marker');
  const code = block[1]!;
  const module = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as { verifyCallback?: VerifyCallback };
  if (typeof module.verifyCallback !== 'function') throw new Error('the README snippet does not export verifyCallback');
  return { code, verifyCallback: module.verifyCallback };
}

/**
 * The first fenced code block after `<!-- readme-example: <name> ... -->` in README.md, as written:
 * tests run the README's own examples, so a wrong example fails a test instead of a reader.
 */
export async function readmeExample(name: string): Promise<string> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const at = readme.search(new RegExp(`<!-- readme-example: ${name}[ >-]`));
  if (at === -1) throw new Error(`README.md has no "<!-- readme-example: ${name}" marker`);
  const block = /```[a-z]*\n([\s\S]*?)\n```/.exec(readme.slice(at));
  if (!block) throw new Error(`README.md has no code block after the readme-example ${name} marker`);
  return block[1]!;
}
