import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { ConfigError } from '../../errors.js';

/** One built file of the console, held in memory with the headers it is served with. */
export interface ConsoleAsset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly cacheControl: string;
}

/** The built console: its index.html (every client-side route answers it) and its other files by path. */
export interface ConsoleAssets {
  readonly index: ConsoleAsset;
  /** Keyed by the path under the build directory, `/`-separated (`assets/index-3f2a.js`). */
  readonly files: ReadonlyMap<string, ConsoleAsset>;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Vite writes content-hashed names under `assets/`: such a file never changes, so a browser may keep it for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Anything else (index.html) is revalidated on every load, so a new build is picked up at once. */
const REVALIDATE = 'no-cache';

/** The content type a file is served with, by its extension. */
export function contentTypeOf(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** The Cache-Control a file is served with: immutable for vite's hashed assets, revalidated otherwise. */
export function cacheControlOf(path: string): string {
  return path.startsWith('assets/') ? IMMUTABLE : REVALIDATE;
}

/** The asset table of files read from a build (pure: the paths and bytes come from the caller). */
export function consoleAssetsOf(files: Iterable<readonly [path: string, body: Buffer]>): ConsoleAssets | undefined {
  const table = new Map<string, ConsoleAsset>();
  for (const [path, body] of files) table.set(path, { body, contentType: contentTypeOf(path), cacheControl: cacheControlOf(path) });
  const index = table.get('index.html');
  return index ? { index, files: table } : undefined;
}

/** Most files a console build may hold: it has a handful; more means the directory is not a build. */
const MAX_FILES = 200;

/**
 * Reads the console build in `dir` into memory once, at startup (a handful of small files). A
 * missing directory or index.html stops startup with a ConfigError saying how to build it.
 */
export async function loadConsoleAssets(dir: string): Promise<ConsoleAssets> {
  const missing = new ConfigError([`console_dir: "${dir}" holds no built console (index.html): run \`npm run build\`, or set console=false`]);
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) throw missing;
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile());
  if (files.length > MAX_FILES) throw new ConfigError([`console_dir: "${dir}" holds ${files.length} files, not a console build (at most ${MAX_FILES})`]);
  const read = await Promise.all(
    files.map(async (e) => {
      const full = join(e.parentPath, e.name);
      return [relative(dir, full).split(sep).join('/'), await readFile(full)] as const;
    }),
  );
  const assets = consoleAssetsOf(read);
  if (!assets) throw missing;
  return assets;
}
