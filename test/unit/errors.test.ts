import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT } from '../helpers/asyncfn.js';

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name));
}

t.test('every error code is unique to its class and documented in the README', async (t) => {
  const files = [...(await sourceFiles(join(REPO_ROOT, 'src'))), ...(await sourceFiles(join(REPO_ROOT, 'actors')))];
  const declared: string[] = [];
  const used = new Set<string>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/readonly code = '(ASYNCFN_ERR_[A-Z_]+)'/g)) declared.push(m[1]!);
    for (const m of text.matchAll(/'(ASYNCFN_ERR_[A-Z_]+)'/g)) used.add(m[1]!);
  }
  t.ok(declared.length >= 8, `found ${declared.length} error classes`);
  t.equal(new Set(declared).size, declared.length, 'no two error classes share a code');
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  for (const code of used) t.ok(readme.includes(`\`${code}\``), `${code} is documented in README.md`);
});
