// `node --import <this file>` (or NODE_OPTIONS=--import=...): records the modules the process has
// loaded into the file named by LOADED_MODULES_FILE, one URL or path a line, each line starting
// with the process's pid (a process it starts with the same environment, such as the child that
// reads a gateway's settings, records into the same file). ES modules are logged as they resolve
// (by loaded-modules-hooks.mjs, in the loader's thread); CommonJS modules, which Node 20 loads
// without those hooks when a CommonJS package requires them, are appended from require.cache on
// SIGUSR2, followed by a line `<pid> # end`.
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const file = process.env.LOADED_MODULES_FILE;
if (file) {
  register('./loaded-modules-hooks.mjs', { parentURL: import.meta.url, data: { file, pid: process.pid } });
  const require = createRequire(import.meta.url);
  process.on('SIGUSR2', () => appendFileSync(file, [...Object.keys(require.cache), '# end'].map((line) => `${process.pid} ${line}\n`).join('')));
}
