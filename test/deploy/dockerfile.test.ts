import { readdir, readFile, stat } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join, relative, resolve } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/index.js';
import { REPO_ROOT } from '../helpers/deploy.js';

/**
 * deploy/Dockerfile, checked by reading it: no Docker engine runs where the tests run, so the
 * image is not built here. What a build would get wrong is checked against the repository:
 * the stages, the user, the entrypoint, what the build context holds, and that the production
 * dependencies are everything the compiled code imports.
 */

const ROOT = REPO_ROOT;
const dockerfile = await readFile(join(ROOT, 'deploy/Dockerfile'), 'utf8');
const dockerignore = await readFile(join(ROOT, '.dockerignore'), 'utf8');
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  /** Index of the FROM it belongs to; -1 before the first FROM (global ARGs). */
  readonly stage: number;
}

/** Instructions in order: comments dropped, `\` continuations joined, keywords upper-cased. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // a comment inside a continuation
    pending += `${line.replace(/\\$/, '')} `;
    if (line.endsWith('\\')) continue;
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(pending.trim()) ?? [];
    pending = '';
    if (keyword.toUpperCase() === 'FROM') stage += 1;
    instructions.push({ keyword: keyword.toUpperCase(), args: args.trim(), stage });
  }
  return instructions;
}

const instructions = parseDockerfile(dockerfile);
const froms = instructions.filter((i) => i.keyword === 'FROM');
const finalStage = froms.length - 1;
const inStage = (stage: number, keyword: string) => instructions.filter((i) => i.stage === stage && i.keyword === keyword);
const stageNamed = (name: string) => froms.findIndex((f) => new RegExp(`\\s+AS\\s+${name}$`, 'i').test(f.args));

/** JSON exec form (`["node", "x"]`), or undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((a) => typeof a === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

t.test('two stages from a Node LTS slim image that satisfies package.json engines', async (t) => {
  t.ok(froms.length >= 2, `${froms.length} stages`);
  const build = stageNamed('build');
  t.ok(build >= 0 && build < finalStage, 'a "build" stage before the final one');
  const version = /^ARG NODE_VERSION=(\d+)$/m.exec(dockerfile)?.[1];
  t.ok(version, 'ARG NODE_VERSION with a default');
  const engineMajor = Number(/(\d+)/.exec(pkg.engines.node)?.[1]);
  t.ok(Number(version) >= engineMajor, `node ${version} satisfies engines ${pkg.engines.node}`);
  t.equal(Number(version) % 2, 0, 'an even (LTS) Node major');
  for (const from of froms) t.match(from.args, /^node:\$\{NODE_VERSION\}-bookworm-slim(\s|$)/, `FROM ${from.args}`);
});

t.test('build stage: npm ci with dev dependencies, then npm run build', async (t) => {
  const runs = inStage(stageNamed('build'), 'RUN').map((i) => i.args);
  const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
  const build = runs.findIndex((r) => /\bnpm run build\b/.test(r));
  t.ok(ci >= 0 && !/--omit=dev/.test(runs[ci]!), 'npm ci, dev dependencies included (TypeScript)');
  t.ok(build > ci, 'npm run build after it');
  t.ok(
    inStage(stageNamed('build'), 'COPY').some((c) => /^deploy\/bundle\.mjs\s/.test(c.args)),
    'the bundler script is copied in (npm run build runs it)',
  );
  t.match(dockerignore, /^!deploy\/bundle\.mjs$/m, 'and the build context has it, although deploy/ is ignored');
  t.equal(pkg.devDependencies.typescript !== undefined, true, 'the compiler is a dev dependency');
});

t.test('runtime stage: production dependencies only, the bundled code, a non-root user', async (t) => {
  const runs = inStage(finalStage, 'RUN').map((i) => i.args);
  t.ok(
    runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r)),
    'npm ci --omit=dev',
  );
  t.notOk(
    instructions.some((i) => i.keyword === 'RUN' && /\bnpm (install|i)\b/.test(i.args)),
    'never npm install (the lockfile decides)',
  );
  const copies = inStage(finalStage, 'COPY').map((i) => i.args);
  t.ok(
    copies.some((c) => /--from=build\s+\/app\/dist\/bundle\b/.test(c)),
    'dist/bundle from the build stage (the command line, bundled by deploy/bundle.mjs)',
  );
  t.ok(
    copies.some((c) => /--from=build\s+\/app\/dist\/console\b/.test(c)),
    'dist/console from the build stage (the web console, console_dir by default)',
  );
  t.notOk(
    copies.some((c) => /node_modules/.test(c)),
    'no node_modules copied from the build stage (it has dev dependencies)',
  );

  const users = inStage(finalStage, 'USER');
  t.equal(users.length, 1, 'one USER');
  const [user = '', group] = users[0]!.args.split(':');
  t.match(user, /^\d+$/, 'numeric, so Kubernetes runAsNonRoot can verify it');
  t.not(Number(user), 0, 'not root');
  if (group !== undefined) t.not(Number(group), 0, 'group not root');
  const lastRun = instructions.findLastIndex((i) => i.keyword === 'RUN');
  t.ok(instructions.indexOf(users[0]!) > lastRun, 'USER after the last RUN');
});

t.test('node is PID 1 and gets SIGTERM: exec-form ENTRYPOINT, the command as CMD', async (t) => {
  const entrypoints = inStage(finalStage, 'ENTRYPOINT');
  t.equal(entrypoints.length, 1);
  const entrypoint = execForm(entrypoints[0]!.args);
  t.same(entrypoint, ['node', pkg.bin.asyncfn], 'ENTRYPOINT ["node", <package.json bin>]: no shell in between');
  const cmd = execForm(inStage(finalStage, 'CMD')[0]?.args ?? '');
  t.ok(cmd && ['gateway', 'worker'].includes(cmd[0]!), `CMD ${JSON.stringify(cmd)} in exec form`);
  // asyncfn drains on SIGTERM itself (src/cli/main.ts); as PID 1 without a handler it would ignore it.
  const main = await readFile(join(ROOT, 'src/cli/main.ts'), 'utf8');
  t.match(main, /process\.once\('SIGTERM'/, 'src/cli/main.ts handles SIGTERM');
  t.notMatch(dockerfile, /^STOPSIGNAL/m, 'default stop signal (SIGTERM)');
});

t.test('EXPOSE the default gateway_port and worker_port', async (t) => {
  const defaults = loadConfig({});
  const exposed = inStage(finalStage, 'EXPOSE')
    .flatMap((i) => i.args.split(/\s+/))
    .map((p) => Number(p.split('/')[0]));
  t.same(exposed.sort(), [defaults.gateway.port, defaults.worker.port].sort());
});

/** .dockerignore as Docker reads it, for the simple patterns used here (names and `*` globs). */
function ignored(path: string, patterns: readonly string[]): boolean {
  let result = false;
  for (const pattern of patterns) {
    const negate = pattern.startsWith('!');
    const body = (negate ? pattern.slice(1) : pattern).replace(/^\/+|\/+$/g, '');
    const regex = new RegExp(`^${body.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    if (regex.test(path)) result = !negate;
  }
  return result;
}

t.test('the build context holds what the COPYs need and nothing heavy or secret', async (t) => {
  const patterns = dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const sources = instructions
    .filter((i) => (i.keyword === 'COPY' || i.keyword === 'ADD') && !/--from=/.test(i.args))
    .flatMap((i) =>
      i.args
        .split(/\s+/)
        .filter((a) => !a.startsWith('--'))
        .slice(0, -1),
    );
  t.ok(sources.length > 0);
  for (const source of sources) {
    await t.resolves(stat(join(ROOT, source)), `${source} exists`);
    t.notOk(ignored(source, patterns), `${source} is in the build context`);
  }
  for (const heavy of ['node_modules', '.git', 'dist', 'test', '.asyncfn', 'coverage', '.env']) {
    t.ok(ignored(heavy, patterns), `${heavy} is not sent to the builder`);
  }
  t.notOk(
    instructions.some((i) => i.keyword === 'ADD'),
    'COPY, not ADD',
  );
});

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name));
}

/** Module specifiers that survive compilation: type-only imports are erased (verbatimModuleSyntax). */
function runtimeSpecifiers(source: string): string[] {
  const specifiers: string[] = [];
  for (const m of source.matchAll(/^\s*(import|export)\s+(?!type\s)[^;]*?\sfrom\s+'([^']+)'/gms)) specifiers.push(m[2]!);
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'/gm)) specifiers.push(m[1]!);
  for (const m of source.matchAll(/(?<!typeof\s)\bimport\(\s*'([^']+)'\s*\)/g)) specifiers.push(m[1]!);
  // pino loads its transports by name; a CommonJS package may be required on demand (src/telemetry/console-logs.ts).
  for (const m of source.matchAll(/\btransport:\s*\{\s*target:\s*'([^']+)'/g)) specifiers.push(m[1]!);
  for (const m of source.matchAll(/\bcreateRequire\([^)]*\)\(\s*'([^']+)'\s*\)/g)) specifiers.push(m[1]!);
  return specifiers;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

t.test('the runtime image has every package the compiled code imports, and no file from test/', async (t) => {
  // The web console's sources and its vite config are bundled at build time (dist/console), never imported by node.
  const buildTimeOnly = [join(ROOT, 'src/gateway/console/web'), join(ROOT, 'src/gateway/console/vite.config.ts')];
  const files = [...(await sourceFiles('src')), ...(await sourceFiles('actors'))].filter((f) => !buildTimeOnly.some((b) => f === b || f.startsWith(`${b}/`)));
  t.ok(files.length > 20, `${files.length} source files`);
  const missing = new Set<string>();
  const intoTests: string[] = [];
  for (const file of files) {
    for (const specifier of runtimeSpecifiers(await readFile(file, 'utf8'))) {
      if (specifier.startsWith('.')) {
        const target = relative(ROOT, resolve(file, '..', specifier));
        if (!target.startsWith('src/') && !target.startsWith('actors/')) intoTests.push(`${relative(ROOT, file)} → ${target}`);
      } else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
        const name = packageName(specifier);
        if (pkg.dependencies[name] === undefined) missing.add(`${name} (${relative(ROOT, file)})`);
      }
    }
  }
  t.same([...missing], [], 'every imported package is in dependencies, which npm ci --omit=dev installs');
  t.same(intoTests, [], 'src/ and actors/ import only each other (the image has no test/)');
});
