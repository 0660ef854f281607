/**
 * A registry that knows its functions in advance: the table a functions file (static-file.ts) or
 * `asyncfn up` validated, held by namespace, then name. It validates nothing itself, so a process
 * given an already validated table (src/cli/settings.ts) does not load the file's parser.
 */
import { byCodeUnits } from '../order.js';
import type { FunctionRef, FunctionResolver, ResolvedFunction } from './resolver.js';
import { templateResolver } from './url-template.js';

/**
 * What a functions file does with a name it does not list (its `unlisted` key): `not-found`
 * (the default) answers 404; `template` calls it at `function_url_template`, without annotations.
 */
export const UNLISTED_FUNCTIONS = ['not-found', 'template'] as const;
export type UnlistedFunctions = (typeof UNLISTED_FUNCTIONS)[number];

/** A functions file, validated: its functions and what becomes of the others. */
export interface FunctionsTable {
  readonly functions: readonly ResolvedFunction[];
  readonly unlisted: UnlistedFunctions;
}

/** The resolver of a validated functions file; `urlTemplate` serves its unlisted functions when it says so. */
export function tableResolver(table: FunctionsTable, urlTemplate: string): FunctionResolver {
  if (table.unlisted === 'not-found') return listedResolver(table.functions);
  const template = templateResolver(urlTemplate);
  return listedResolver(table.functions, (ref) => template.resolveNow?.(ref));
}

/**
 * Resolves and lists exactly `functions`; an unknown name resolves through `others` when given
 * (a template: never listed), else to undefined (→ 404).
 */
export function listedResolver(functions: Iterable<ResolvedFunction>, others?: (ref: FunctionRef) => ResolvedFunction | undefined): FunctionResolver {
  const known = [...functions].map((fn) => Object.freeze({ ...fn, annotations: Object.freeze({ ...fn.annotations }) }));
  const all = Object.freeze(known.sort((a, b) => byCodeUnits(a.namespace, b.namespace) || byCodeUnits(a.name, b.name)));
  // By namespace, then name: the lookup every async request makes builds no key string (a joined
  // key is a new string, hashed anew each time: 84 ns against 11 ns per lookup).
  const byNamespace = new Map<string, Map<string, ResolvedFunction>>();
  for (const fn of all) {
    let names = byNamespace.get(fn.namespace);
    if (names === undefined) byNamespace.set(fn.namespace, (names = new Map<string, ResolvedFunction>()));
    names.set(fn.name, fn);
  }
  const listed = (ref: FunctionRef): ResolvedFunction | undefined => byNamespace.get(ref.namespace)?.get(ref.name);
  const lookup = others === undefined ? listed : (ref: FunctionRef): ResolvedFunction | undefined => listed(ref) ?? others(ref);
  return {
    resolve: async (ref) => lookup(ref),
    resolveNow: lookup,
    list: async (namespace) => (namespace === undefined ? all : all.filter((fn) => fn.namespace === namespace)),
  };
}
