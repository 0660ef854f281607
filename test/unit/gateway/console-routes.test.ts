import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastify from 'fastify';
import t, { type Test } from 'tap';
import { routeGroup } from '../../../src/gateway/auth/index.js';
import { cacheControlOf, consoleAssetsOf, contentTypeOf, loadConsoleAssets } from '../../../src/gateway/console/assets.js';
import { CONSOLE_CSP, consoleRoutes } from '../../../src/gateway/routes/console.js';
import { ConfigError } from '../../../src/errors.js';

/** The console's files served from memory (src/gateway/console/assets.ts, src/gateway/routes/console.ts). */

async function buildDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-console-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), '<!doctype html><script type="module" src="/ui/assets/index-abc.js"></script>');
  await writeFile(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
  await writeFile(join(dir, 'assets', 'index-abc.css'), 'body{}');
  await writeFile(join(dir, 'favicon.svg'), '<svg/>');
  return dir;
}

t.test('content types and caching by path: hashed assets are immutable, the rest revalidated', async (t) => {
  t.same(['index.html', 'assets/a-1.js', 'assets/a-1.css', 'favicon.svg', 'x.bin'].map(contentTypeOf), [
    'text/html; charset=utf-8',
    'text/javascript; charset=utf-8',
    'text/css; charset=utf-8',
    'image/svg+xml',
    'application/octet-stream',
  ]);
  t.equal(cacheControlOf('assets/index-abc.js'), 'public, max-age=31536000, immutable');
  t.equal(cacheControlOf('index.html'), 'no-cache');
  t.equal(cacheControlOf('favicon.svg'), 'no-cache');
  t.equal(consoleAssetsOf([['assets/a.js', Buffer.from('x')]]), undefined, 'no index.html: no console');
});

t.test('a missing build stops startup naming `npm run build`', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-console-empty-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const where of [join(dir, 'nope'), dir]) {
    const err = (await loadConsoleAssets(where).catch((e: unknown) => e)) as ConfigError;
    t.ok(err instanceof ConfigError, where);
    t.match(err.problems.join('\n'), /console_dir: ".*" holds no built console \(index\.html\): run `npm run build`/);
  }
});

t.test('GET /ui, its files and client-side routes, each with the CSP; a missing hashed file is a 404', async (t) => {
  const app = fastify();
  t.teardown(() => app.close());
  await app.register(consoleRoutes, { assets: await loadConsoleAssets(await buildDir(t)), traceUrlTemplate: 'http://j/{call_id}' });

  for (const url of ['/ui', '/ui/', '/ui/inflight', '/ui/invocations/abc']) {
    const res = await app.inject({ url });
    t.equal(res.statusCode, 200, url);
    t.match(res.body, /^<!doctype html>/, `${url}: index.html`);
    t.equal(res.headers['content-security-policy'], CONSOLE_CSP);
    t.equal(res.headers['cache-control'], 'no-cache');
    t.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  }
  const js = await app.inject({ url: '/ui/assets/index-abc.js' });
  t.equal(js.body, 'console.log(1)');
  t.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.equal(js.headers['x-content-type-options'], 'nosniff');
  t.equal((await app.inject({ url: '/ui/favicon.svg' })).headers['content-type'], 'image/svg+xml');
  const stale = await app.inject({ url: '/ui/assets/index-old.js' });
  t.equal(stale.statusCode, 404, 'an old hash is not answered with the page');
  const settings = await app.inject({ url: '/ui/config.json' });
  t.same(settings.json(), { traceUrlTemplate: 'http://j/{call_id}' });
  t.match(CONSOLE_CSP, /^default-src 'self'/);
});

t.test('every console route is an admin route (behind basic_auth)', async (t) => {
  for (const url of ['/ui', '/ui/*', '/ui/config.json']) t.equal(routeGroup('GET', url), 'admin', url);
});
