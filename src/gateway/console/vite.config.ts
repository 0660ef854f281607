import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The web console's build (`npm run build`: `vite build -c src/gateway/console/vite.config.ts`):
 * web/ → dist/console/, served by the gateway at /ui (src/gateway/routes/console.ts). Preact's JSX
 * through vite 8's own transformer (oxc), so no framework plugin is needed; every module bundled,
 * no inline script (the console's Content-Security-Policy is `default-src 'self'`).
 */
export default defineConfig({
  root: fileURLToPath(new URL('./web', import.meta.url)),
  base: '/ui/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../../dist/console', import.meta.url)),
    emptyOutDir: true,
    // The polyfill would be an inline script; every browser the console supports has modulepreload.
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
});
