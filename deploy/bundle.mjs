// Builds dist/bundle/: asyncfn's command line as it ships (the image's entrypoint, `npm start`,
// the `asyncfn` bin). `node deploy/bundle.mjs [dist/<name>]`: the bench and the bundle's test build
// their own copy (dist/bundle-bench, dist/bundle-test), so neither replaces files another runs.
//
// Why a bundle: a process that loads its ~520 modules one file at a time (a worker: 403 of them
// from node_modules) keeps, for each, a module record, its namespace, its URL, its source and the
// loader's bookkeeping, in V8's heap and in malloc's; bundled, a worker loads 62 files. In
// `npm run bench`, alternated with the modules: an idle worker settled at 58.5–58.9 MiB against
// 64.5–66.8, an idle gateway started at 68–69 MiB against 74–78, and the worker's peak during a
// drain was 6 MiB lower, for the same CPU per invocation and per 202 (BENCHMARKS.md, "One bundle
// instead of 500 modules").
//
// Whitespace and syntax are minified: V8 keeps each file's source text in the heap, and an idle
// worker kept ~1.7 MiB less than with the bundle as written (three runs each). Names are not:
// renaming them saved nothing more, and stack traces keep naming asyncfn's own functions (node
// --enable-source-maps maps their positions back to src/). No keepNames either: it wraps every
// function in a call that the hot paths would pay.
//
// What stays lazy stays lazy: every `await import()` becomes its own chunk (splitting), so a worker
// without tracing still loads no OpenTelemetry SDK, and neither process loads the settings'
// validators, which run in the child process of src/cli/settings-apart.ts (its entry is here too).
// undici's parts (src/http/undici-parts.ts) and pino-pretty are still required from node_modules at
// run time, so the image keeps its production dependencies.
//
// Some packages stay out of the bundle and are imported from node_modules as before (EXTERNAL):
// - those asyncfn imports on demand with `await import('pkg')`: the chunk esbuild would make of a
//   CommonJS package exports only `default`, so `const { OTLPTraceExporter } = await import(…)`
//   would read undefined (the plugin below refuses any other such import). OpenTelemetry's SDK is
//   one, loaded only when tracing is configured; @opentelemetry/api stays bundled, and the SDK's
//   own copy of it shares the bundled one's global registrations, as the API is made to;
// - figlet (the `up` command's sample function), which reads its fonts from beside its own module.
//   Of the bundled packages, only pino's transports look for files beside their module, and
//   asyncfn configures none (pino-pretty runs in the process, src/telemetry/console-logs.ts).
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url);
// Two levels below the repository, as dist/src/cli/ is: src/version.ts and src/config/console-dir.ts
// find package.json from there, and undici's parts are required from the node_modules above it.
const name = process.argv[2] ?? 'dist/bundle';
if (!/^dist\/[\w-]+$/.test(name)) throw new Error(`the bundle goes to dist/<name>, not ${name}`);
const outdir = new URL(`${name}/`, root).pathname;

/** Packages imported from node_modules at run time, not bundled (see above). */
const EXTERNAL = [
  '@opentelemetry/core',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/resources',
  '@opentelemetry/sdk-node',
  '@opentelemetry/sdk-trace-base',
  'figlet',
];

/** Refuses `await import('pkg')` in asyncfn's own code unless the package is in EXTERNAL. */
const lazyPackages = {
  name: 'lazy-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.kind !== 'dynamic-import' || args.path.startsWith('node:') || args.importer.includes('/node_modules/')) return undefined;
      if (EXTERNAL.includes(args.path)) return undefined;
      return {
        errors: [{ text: `import('${args.path}') would be bundled as a chunk that exports only \`default\`: add the package to EXTERNAL in deploy/bundle.mjs` }],
      };
    });
  },
};

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
  external: EXTERNAL,
  plugins: [lazyPackages],
  logLevel: 'warning',
});
