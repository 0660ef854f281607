/**
 * A registry written down in advance: a YAML (or JSON) file, or an in-memory table for `asyncfn up`
 * and tests. It knows every function, so an unknown name resolves to undefined (→ 404).
 *
 * ```yaml
 * functions:
 *   echo:
 *     url: http://127.0.0.1:9000/echo
 *     namespace: openfaas-fn          # optional, default = defaultNamespace
 *     annotations:
 *       com.openfaas.queue: slow       # optional
 * ```
 * A key may also be written `name.namespace`, so one file can hold the same name in two namespaces.
 *
 * With `unlisted: template` at the top, the file lists only the functions that need annotations
 * (a queue, retries) and may omit their `url`: those and every function it does not list are
 * called at `function_url_template`, as in template mode (for a cluster whose functions are all
 * reached by Kubernetes DNS). Without it (`unlisted: not-found`) an unknown name is a 404.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, InvalidFunctionNameError } from '../errors.js';
import { listedResolver, tableResolver, UNLISTED_FUNCTIONS, type FunctionsTable, type UnlistedFunctions } from './listed.js';
import { functionKey, isDnsLabel, normalizeFunctionUrl, parseFunctionRef, type FunctionRef, type FunctionResolver, type ResolvedFunction } from './resolver.js';
import { DEFAULT_URL_TEMPLATE, expandUrlTemplate } from './url-template.js';

/** One function as written in the file or passed to {@link staticResolver}. */
export interface StaticFunctionEntry {
  /** Base URL of the function, http or https; in a file with `unlisted: template`, default its template URL. */
  url?: string;
  /** OpenFaaS-style annotations; values must be strings (quote numbers in YAML). */
  annotations?: Record<string, string>;
  /** Namespace; default: the registry's default namespace. */
  namespace?: string;
}

const EntrySchema = z.strictObject(
  {
    url: z.string({ error: 'expected a string' }).optional(),
    namespace: z.string({ error: 'expected a string' }).optional(),
    annotations: z
      .record(
        z.string(),
        // Unquoted scalars are refused, not coerced: YAML would turn `1.0` into "1" and `on` stays a guess.
        z.string({ error: 'annotation values must be strings (quote numbers and booleans in YAML)' }),
        { error: 'expected a mapping of annotation name to string' },
      )
      .optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? undefined : 'expected a mapping with a "url" key') },
);

// Only the outer shape is checked here; entries are checked one by one below so that one bad entry
// does not hide the problems of the others.
const FileSchema = z.strictObject(
  {
    unlisted: z.enum(UNLISTED_FUNCTIONS, { error: `expected ${UNLISTED_FUNCTIONS.join(' or ')}` }).default('not-found'),
    functions: z.record(z.string(), z.unknown(), { error: 'expected a mapping of name to function' }),
  },
  // Keep zod's own message for unknown keys: it names them.
  { error: (issue) => (issue.code === 'unrecognized_keys' ? undefined : 'expected a mapping with a "functions" key') },
);

/** Renders a zod issue path; keys containing dots (annotation names, `name.namespace`) are quoted. */
function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'string' && !p.includes('.') ? p : JSON.stringify(String(p)))).join('.');
}

function issueLines(prefix: readonly PropertyKey[], error: z.ZodError): string[] {
  return error.issues.map((i) => {
    const path = [...prefix, ...i.path];
    return path.length === 0 ? i.message : `${formatPath(path)}: ${i.message}`;
  });
}

/**
 * Validates a whole table of functions, listing every problem, and returns it keyed by
 * `name.namespace`. An entry without `url` takes `urlTemplate`'s when given, else is a problem.
 * Throws ConfigError.
 */
function buildRegistry(functions: Record<string, unknown>, defaultNamespace: string, urlTemplate?: string): Map<string, ResolvedFunction> {
  const problems: string[] = [];
  const registry = new Map<string, ResolvedFunction>();
  for (const [key, raw] of Object.entries(functions)) {
    const where = formatPath(['functions', key]);
    const entry = EntrySchema.safeParse(raw);
    if (!entry.success) {
      problems.push(...issueLines(['functions', key], entry.error));
      continue;
    }
    const { url, namespace, annotations } = entry.data;
    // Every check below runs, so an entry with a bad name and a bad URL reports both.
    const before = problems.length;
    if (namespace !== undefined && !isDnsLabel(namespace)) {
      problems.push(`${where}.namespace: "${namespace}" is not a DNS-1123 label`);
    }
    let ref: FunctionRef | undefined;
    try {
      // A placeholder namespace, so a bad `namespace:` field is reported once, on its own line.
      const inKey = parseFunctionRef(key, 'default');
      ref = { name: inKey.name, namespace: key.includes('.') ? inKey.namespace : (namespace ?? defaultNamespace) };
    } catch (err) {
      if (!(err instanceof InvalidFunctionNameError)) throw err;
      problems.push(`${where}: ${err.message}`);
    }
    if (ref && namespace !== undefined && ref.namespace !== namespace) {
      problems.push(`${where}: namespace "${namespace}" contradicts the key's namespace "${ref.namespace}"`);
    }
    if (url === undefined && urlTemplate === undefined) problems.push(`${where}.url: required (unless the file says "unlisted: template")`);
    const target = url ?? (ref && urlTemplate !== undefined ? expandUrlTemplate(urlTemplate, ref) : undefined);
    const checked = target === undefined ? undefined : normalizeFunctionUrl(target);
    if (checked?.ok === false) problems.push(`${where}.url: ${checked.problem}`);
    if (!ref || !checked?.ok || problems.length > before) continue;
    const k = functionKey(ref);
    if (registry.has(k)) {
      problems.push(`${where}: function "${k}" is defined more than once`);
      continue;
    }
    // listedResolver freezes what it keeps.
    registry.set(k, { ...ref, url: checked.url, annotations: annotations ?? {} });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return registry;
}

/**
 * In-memory registry (used by the `up` command for sample functions, and by tests). Keys are
 * `name` or `name.namespace`. Throws ConfigError listing every bad entry.
 */
export function staticResolver(functions: Record<string, StaticFunctionEntry>, defaultNamespace: string): FunctionResolver {
  return listedResolver(buildRegistry(functions, defaultNamespace).values());
}

/**
 * Parses the text of a functions file (YAML, and so JSON too) into its table. `urlTemplate`
 * (`function_url_template`) serves a file with `unlisted: template`. `source` names the file in
 * error messages. Throws ConfigError listing every problem.
 */
export function parseFunctionsTable(text: string, defaultNamespace: string, urlTemplate: string, source = 'functions file'): FunctionsTable {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError([`${source}: ${(err as Error).message.split('\n')[0]}`], { cause: err });
  }
  const shape = FileSchema.safeParse(doc);
  if (!shape.success) throw new ConfigError(issueLines([], shape.error).map((l) => `${source}: ${l}`));
  const unlisted: UnlistedFunctions = shape.data.unlisted;
  try {
    const registry = buildRegistry(shape.data.functions, defaultNamespace, unlisted === 'template' ? urlTemplate : undefined);
    return { functions: [...registry.values()], unlisted };
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.problems.map((p) => `${source}: ${p}`));
    throw err;
  }
}

/** Parses the text of a functions file into its resolver (see {@link parseFunctionsTable}). Throws ConfigError. */
export function parseFunctionsFile(text: string, defaultNamespace: string, source = 'functions file', urlTemplate = DEFAULT_URL_TEMPLATE): FunctionResolver {
  return tableResolver(parseFunctionsTable(text, defaultNamespace, urlTemplate, source), urlTemplate);
}

/** Reads and parses a functions file into its table. Throws ConfigError when it cannot be read or is invalid. */
export async function loadFunctionsTable(path: string, defaultNamespace: string, urlTemplate: string): Promise<FunctionsTable> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read functions file ${path}: ${(err as Error).message}`], { cause: err });
  }
  return parseFunctionsTable(text, defaultNamespace, urlTemplate, path);
}
