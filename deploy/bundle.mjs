// Builds dist/bundle/: asyncfn's command line as it ships (the image's entrypoint, `npm start`,
// the `asyncfn` bin). `node deploy/bundle.mjs [dist/<name>]`: the bench and the bundle's test build
// their own copy (dist/bundle-bench, dist/bundle-test), so neither replaces files another runs.
//
// Why a bundle: a process that loads ~400 ES modules one file at a time keeps, for each, a module
// record, its namespace, its URL and the loader's bookkeeping, in V8's heap and in malloc's. The
// same code in a few files kept ~8 MiB less RSS in an idle worker (68 → 60 MiB), ~10 MiB less
// in an idle gateway (76–79 → 67) and 4–7 MiB less at their peaks under load, for the same CPU
// per invocation (BENCHMARKS.md, "One bundle instead of 400 modules").
//
// Whitespace and syntax are minified: V8 keeps each file's source text in the heap, and the idle
// worker kept ~1.7 MiB less (59.8–60.5 → 58.1–58.8 MiB, three runs each). Names are not: renaming
// them saved nothing more, and stack traces keep naming asyncfn's own functions (node
// --enable-source-maps maps their positions back to src/). No keepNames either: it wraps every
// function in a call that the hot paths would pay.
//
// What stays lazy stays lazy: every `await import()` becomes its own chunk (splitting), so a worker
// without tracing still loads no OpenTelemetry SDK, and neither process loads the settings'
// validators, which run in the child process of src/cli/settings-apart.ts (its entry is here too).
// undici's parts (src/http/undici-parts.ts) and pino-pretty are still required from node_modules at
// run time, so the image keeps its production dependencies.
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
// Two levels below the repository, as dist/src/cli/ is: src/version.ts and src/config/console-dir.ts
// find package.json from there, and undici's parts are required from the node_modules above it.
const name = process.argv[2] ?? 'dist/bundle';
if (!/^dist\/[\w-]+$/.test(name)) throw new Error(`the bundle goes to dist/<name>, not ${name}`);
const outdir = new URL(`${name}/`, root).pathname;

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root.pathname,
  entryPoints: { main: 'src/cli/main.ts', 'settings-child': 'src/cli/settings-child.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // The CommonJS packages inside an ES module bundle still call `require` for node's own modules.
  banner: { js: "import { createRequire as __asyncfnCreateRequire } from 'node:module';\nconst require = __asyncfnCreateRequire(import.meta.url);" },
  minifyWhitespace: true,
  minifySyntax: true,
  // For `node --enable-source-maps`; node reads no map otherwise.
  sourcemap: 'linked',
  logLevel: 'warning',
});
