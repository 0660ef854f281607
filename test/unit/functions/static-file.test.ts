import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../../../src/errors.js';
import { createResolver } from '../../../src/functions/index.js';
import { parseFunctionsFile, staticResolver } from '../../../src/functions/static-file.js';

const GOOD_YAML = `
functions:
  echo:
    url: http://127.0.0.1:9000/echo
  slow:
    url: https://fns.example.com/slow
    namespace: batch
    annotations:
      com.openfaas.queue: slow
      com.openfaas.retry.attempts: "5"
  echo.staging:
    url: http://127.0.0.1:9001/echo
`;

/** Runs fn and returns the problems of the ConfigError it throws. */
function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('a good YAML file resolves by name and namespace', async (t) => {
  const r = parseFunctionsFile(GOOD_YAML, 'openfaas-fn');
  t.same(await r.resolve({ name: 'echo', namespace: 'openfaas-fn' }), {
    name: 'echo',
    namespace: 'openfaas-fn',
    url: 'http://127.0.0.1:9000/echo',
    annotations: {},
  });
  t.same(await r.resolve({ name: 'slow', namespace: 'batch' }), {
    name: 'slow',
    namespace: 'batch',
    url: 'https://fns.example.com/slow',
    annotations: { 'com.openfaas.queue': 'slow', 'com.openfaas.retry.attempts': '5' },
  });
  t.equal((await r.resolve({ name: 'echo', namespace: 'staging' }))?.url, 'http://127.0.0.1:9001/echo');
  // the lookup key is name + namespace
  t.equal(await r.resolve({ name: 'slow', namespace: 'openfaas-fn' }), undefined);
  t.equal(await r.resolve({ name: 'nope', namespace: 'openfaas-fn' }), undefined);
  const listed = await r.list();
  t.same(
    listed?.map((f) => `${f.name}.${f.namespace}`),
    ['slow.batch', 'echo.openfaas-fn', 'echo.staging'],
  );
  t.same(
    (await r.list('staging'))?.map((f) => `${f.name}.${f.namespace}`),
    ['echo.staging'],
    "OpenFaaS's ?namespace=: only that namespace's",
  );
  t.same(await r.list('nowhere'), []);
  const echo = await r.resolve({ name: 'echo', namespace: 'openfaas-fn' });
  t.ok(Object.isFrozen(echo) && Object.isFrozen(echo?.annotations), 'resolved functions are frozen');
  // At hand without a promise: the same object resolve gives, and undefined for what it does not list.
  t.equal(r.resolveNow?.({ name: 'echo', namespace: 'openfaas-fn' }), echo);
  t.equal(r.resolveNow?.({ name: 'slow', namespace: 'openfaas-fn' }), undefined);
});

t.test('JSON is accepted too, and URLs are normalised', async (t) => {
  const r = parseFunctionsFile(JSON.stringify({ functions: { fn: { url: 'http://h:8080' } } }), 'default');
  t.equal((await r.resolve({ name: 'fn', namespace: 'default' }))?.url, 'http://h:8080/');
});

t.test('unlisted: template lists only the annotated functions; they and every other name get the template URL', async (t) => {
  const text = `
unlisted: template
functions:
  report:
    annotations:
      com.openfaas.queue: slow
  pinned:
    url: http://10.0.0.9:8080
`;
  const r = parseFunctionsFile(text, 'openfaas-fn', 'fns.yaml', 'http://{name}.{namespace}.svc:8080');
  t.same(await r.resolve({ name: 'report', namespace: 'openfaas-fn' }), {
    name: 'report',
    namespace: 'openfaas-fn',
    url: 'http://report.openfaas-fn.svc:8080/',
    annotations: { 'com.openfaas.queue': 'slow' },
  });
  t.equal((await r.resolve({ name: 'pinned', namespace: 'openfaas-fn' }))?.url, 'http://10.0.0.9:8080/', 'a url given is kept');
  const other = r.resolveNow?.({ name: 'other', namespace: 'team' });
  t.same(other, { name: 'other', namespace: 'team', url: 'http://other.team.svc:8080/', annotations: {} }, 'an unlisted name is called at the template, at once');
  t.same(
    (await r.list())?.map((f) => f.name),
    ['pinned', 'report'],
    'only the listed functions are listed',
  );
  t.equal(await parseFunctionsFile('unlisted: not-found\nfunctions: {}\n', 'd').resolve({ name: 'other', namespace: 'd' }), undefined, 'not-found: a 404');
  t.match(
    problemsOf(() => parseFunctionsFile('unlisted: maybe\nfunctions: {}\n', 'd', 'fns.yaml')),
    [/fns\.yaml: unlisted: expected not-found or template/],
  );
});

t.test('a bad file lists every problem', async (t) => {
  const bad = `
functions:
  ok:
    url: http://h/ok
  Bad_Name:
    url: http://h/x
  ftp:
    url: ftp://h/x
  nourl:
    namespace: x
  garbage:
    url: "not a url"
  numbers:
    url: http://h/n
    annotations:
      com.openfaas.retry.attempts: 5
  badns:
    url: http://h/n
    namespace: Bad
  typo:
    url: http://h/t
    anotations: {}
  clash.one:
    url: http://h/c
    namespace: two
  scalar: http://h/s
  Twice_Bad:
    url: mailto:x
`;
  const problems = problemsOf(() => parseFunctionsFile(bad, 'openfaas-fn', 'fns.yaml'));
  t.equal(problems.length, 11, problems.join('\n'));
  t.ok(
    problems.every((p) => p.startsWith('fns.yaml: functions.')),
    'each problem names the file and entry',
  );
  const has = (re: RegExp) =>
    t.ok(
      problems.some((p) => re.test(p)),
      re.source,
    );
  has(/Bad_Name: invalid function name "Bad_Name"/);
  has(/ftp\.url: "ftp:\/\/h\/x" must use http or https, not ftp/);
  has(/nourl\.url: required \(unless the file says "unlisted: template"\)/);
  has(/garbage\.url: "not a url" is not a valid URL/);
  has(/numbers\.annotations\."com\.openfaas\.retry\.attempts": annotation values must be strings/);
  has(/badns\.namespace: "Bad" is not a DNS-1123 label/);
  has(/typo: Unrecognized key: "anotations"/);
  has(/"clash\.one": namespace "two" contradicts the key's namespace "one"/);
  has(/scalar: expected a mapping with a "url" key/);
  has(/Twice_Bad: invalid function name/);
  has(/Twice_Bad\.url: "mailto:x" must use http or https/);
});

t.test('a function defined twice (key namespace and default namespace) is a problem', async (t) => {
  const problems = problemsOf(() => staticResolver({ echo: { url: 'http://h/a' }, 'echo.openfaas-fn': { url: 'http://h/b' } }, 'openfaas-fn'));
  t.match(problems, [/"echo\.openfaas-fn" is defined more than once/]);
});

t.test('files that are not a functions mapping', async (t) => {
  t.match(
    problemsOf(() => parseFunctionsFile('', 'd')),
    [/expected a mapping with a "functions" key/],
  );
  t.match(
    problemsOf(() => parseFunctionsFile('functions: [1]', 'd')),
    [/functions: expected a mapping/],
  );
  t.match(
    problemsOf(() => parseFunctionsFile('functions: {}\nother: 1', 'd')),
    [/Unrecognized key: "other"/],
  );
  t.match(
    problemsOf(() => parseFunctionsFile('functions: {\n  a: [', 'd', 'f.yaml')),
    [/^f\.yaml: /],
  );
});

t.test('staticResolver builds an in-memory registry', async (t) => {
  const r = staticResolver({ echo: { url: 'http://127.0.0.1:1/echo', annotations: { 'com.openfaas.queue': 'q' } } }, 'openfaas-fn');
  t.same((await r.resolve({ name: 'echo', namespace: 'openfaas-fn' }))?.annotations, { 'com.openfaas.queue': 'q' });
  t.equal(await r.resolve({ name: 'echo', namespace: 'other' }), undefined);
  t.throws(() => staticResolver({ echo: { url: 'file:///etc/passwd' } }, 'openfaas-fn'), ConfigError);
});

t.test('createResolver in file mode reads the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-functions-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'functions.yaml');
  await writeFile(file, GOOD_YAML);
  const cfg = { mode: 'file' as const, file, urlTemplate: '', defaultNamespace: 'openfaas-fn', gatewayUrl: '' };
  const r = await createResolver(cfg);
  t.equal((await r.resolve({ name: 'echo', namespace: 'openfaas-fn' }))?.url, 'http://127.0.0.1:9000/echo');

  await writeFile(file, 'functions:\n  x:\n    url: gopher://h\n');
  await t.rejects(createResolver(cfg), { name: 'ConfigError', problems: [new RegExp(`^${file}: functions\\.x\\.url: `)] });
  await t.rejects(createResolver({ ...cfg, file: join(dir, 'missing.yaml') }), {
    name: 'ConfigError',
    problems: [/cannot read functions file .*missing\.yaml/],
  });
  await t.rejects(createResolver({ ...cfg, file: undefined }), { name: 'ConfigError', problems: [/functions file is required/] });
});
