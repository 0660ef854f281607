// Module hooks of loaded-modules.mjs: logs each resolved ES module URL, after the pid of the process.
import { appendFileSync } from 'node:fs';

let file;
let pid;

export function initialize(data) {
  file = data.file;
  pid = data.pid;
}

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(file, `${pid} ${resolved.url}\n`);
  return resolved;
}
