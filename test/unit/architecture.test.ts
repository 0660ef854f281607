import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';
import ts from 'typescript';
import { REPO_ROOT } from '../helpers/repo-root.js';

/**
 * The house rules, read from the imports (static `import`/`export ... from` and dynamic
 * `import()`, type-only ones included) of every module under src/ and actors/:
 * - actors/ (machines, supervisors, policies, domain types) imports nothing from src/;
 * - nothing outside src/cli imports from src/cli (the commands are the top of the house);
 * - no two folders import each other, directly or around a loop.
 * A folder is a room: `actors`, or `src/<name>` (its subfolders belong to it).
 */

const ROOT = REPO_ROOT;

function modulesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** The relative modules `file` imports, as repository paths (`.js` specifiers mapped to `.ts`). */
function importsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const specifiers: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specifiers.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      specifiers.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)).replace(/\.js$/, '.ts'));
}

function roomOf(file: string): string {
  const [top, second] = file.split('/');
  return top === 'src' && second !== undefined && second.endsWith('.ts') === false ? `src/${second}` : top === 'src' ? 'src' : top!;
}

const files = [...modulesUnder('src'), ...modulesUnder('actors')];
const edges = files.flatMap((from) => importsOf(from).map((to) => ({ from, to })));

t.test('the rules read something: every module is seen, and imports between rooms exist', async (t) => {
  t.ok(files.length > 50, `${files.length} modules`);
  t.ok(
    edges.some((e) => roomOf(e.from) === 'src/worker' && roomOf(e.to) === 'actors'),
    'the worker imports the machines',
  );
});

t.test('actors/ imports nothing from src/', async (t) => {
  t.same(
    edges.filter((e) => roomOf(e.from) === 'actors' && e.to.startsWith('src/')).map((e) => `${e.from} → ${e.to}`),
    [],
  );
});

t.test('nothing outside src/cli imports from src/cli', async (t) => {
  t.same(
    edges.filter((e) => roomOf(e.to) === 'src/cli' && roomOf(e.from) !== 'src/cli').map((e) => `${e.from} → ${e.to}`),
    [],
  );
});

t.test('no two rooms import each other, directly or around a loop', async (t) => {
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    const [a, b] = [roomOf(from), roomOf(to)];
    if (a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
  }
  // Tarjan's strongly connected components: a component of more than one room is a loop.
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const loops: string[][] = [];
  const connect = (v: string): void => {
    indices.set(v, index);
    low.set(v, index);
    index += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!));
    }
    if (low.get(v) !== indices.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) loops.push(component.sort());
  };
  for (const room of graph.keys()) if (!indices.has(room)) connect(room);
  const explain = (loop: string[]): string =>
    loop.flatMap((a) => edges.filter((e) => roomOf(e.from) === a && loop.includes(roomOf(e.to)) && roomOf(e.to) !== a).map((e) => `${e.from} → ${e.to}`)).join('\n');
  t.same(loops, [], loops.map(explain).join('\n\n'));
});
