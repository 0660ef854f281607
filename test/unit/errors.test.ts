import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import {
  AsyncFnError,
  BadRequestError,
  codeForStatus,
  ConfigError,
  createError,
  ERRORS,
  formatMessage,
  FunctionNotFoundError,
  httpStatusOf,
  type ErrorCode,
} from '../../src/errors.js';
import { REPO_ROOT } from '../helpers/asyncfn.js';

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name));
}

/** The README's error reference: the status table (`| 400 | `CODE` | when |`) and the table of codes that never reach a client. */
async function readmeErrorReference(): Promise<{ http: Map<string, Set<number>>; internal: Set<string> }> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('Every refusal is a status plus one line');
  const end = readme.indexOf('\n## ', start);
  const section = readme.slice(start, end);
  const split = section.indexOf('Codes that never reach an HTTP client');
  const http = new Map<string, Set<number>>();
  for (const m of section.slice(0, split).matchAll(/^\| (\d{3}) \| `(ASYNCFN_ERR_[A-Z_]+)` \|/gm)) {
    const statuses = http.get(m[2]!) ?? new Set<number>();
    statuses.add(Number(m[1]));
    http.set(m[2]!, statuses);
  }
  const internal = new Set([...section.slice(split).matchAll(/^\| `(ASYNCFN_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]!));
  return { http, internal };
}

const TABLE = Object.entries(ERRORS) as Array<[ErrorCode, (typeof ERRORS)[ErrorCode]]>;

t.test('the error table and the README error reference list the same codes with the same statuses', async (t) => {
  const { http, internal } = await readmeErrorReference();
  t.ok(http.size >= 20 && internal.size >= 8, `README lists ${http.size} HTTP codes and ${internal.size} others`);
  for (const [code, spec] of TABLE) {
    if ('internal' in spec && spec.internal) {
      t.ok(internal.has(code), `${code} is under "Codes that never reach an HTTP client"`);
      t.notOk(http.has(code), `${code} is not in the status table`);
    } else {
      t.same([...(http.get(code) ?? [])], [spec.status], `${code} is in the status table with status ${spec.status} only`);
    }
  }
  for (const code of http.keys()) t.ok(code in ERRORS && !('internal' in ERRORS[code as ErrorCode]), `README status table: ${code} is an HTTP code of the table`);
  for (const code of internal) t.ok(code in ERRORS && 'internal' in ERRORS[code as ErrorCode], `README: ${code} is an internal code of the table`);
});

t.test('every code in the source is a code of the table', async (t) => {
  const files = [...(await sourceFiles(join(REPO_ROOT, 'src'))), ...(await sourceFiles(join(REPO_ROOT, 'actors')))];
  const used = new Set<string>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(/['"`](ASYNCFN_ERR_[A-Z_]+)['"`]/g)) used.add(m[1]!);
  }
  t.ok(used.size >= 20, `found ${used.size} codes`);
  for (const code of used) t.ok(code in ERRORS, `${code} is in src/errors.ts`);
});

t.test('an error class takes its code, status and message from the table', async (t) => {
  const notFound = new FunctionNotFoundError('echo');
  t.ok(notFound instanceof AsyncFnError);
  t.match(notFound, { name: 'FunctionNotFoundError', code: 'ASYNCFN_ERR_FUNCTION_NOT_FOUND', httpStatus: 404, message: 'function "echo" not found' });
  t.match(new BadRequestError('no'), { name: 'BadRequestError', httpStatus: 400, message: 'no' });
  const cause = new Error('root');
  const config = new ConfigError(['a', 'b'], { cause });
  t.equal(config.message, 'invalid configuration:\n  - a\n  - b');
  t.equal(config.cause, cause);
  t.equal(config.httpStatus, 500);

  class InvocationGoneError extends createError('ASYNCFN_ERR_INVOCATION_FINISHED') {}
  t.match(new InvocationGoneError('c1', 'succeeded'), {
    name: 'InvocationGoneError',
    code: 'ASYNCFN_ERR_INVOCATION_FINISHED',
    httpStatus: 404,
    message: 'invocation "c1" already finished (succeeded)',
  });
  t.equal(formatMessage('ASYNCFN_ERR_BODY_TOO_LARGE', [10]), 'request body exceeds the 10-byte limit (max_body_size)');
  t.equal(httpStatusOf('ASYNCFN_ERR_QUEUE_UNAVAILABLE'), 503);
});

t.test("a refusal node or fastify made gets its status's own code from the table", async (t) => {
  const byStatus = TABLE.filter(([, spec]) => 'byStatus' in spec);
  t.equal(new Set(byStatus.map(([, spec]) => spec.status)).size, byStatus.length, 'one code per status');
  for (const [code, spec] of byStatus) t.equal(codeForStatus(spec.status), code, String(spec.status));
  t.equal(codeForStatus(417), 'ASYNCFN_ERR_BAD_REQUEST', 'any other status');
});
