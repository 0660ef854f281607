/**
 * A command's settings: its validated Config, the warnings about variables it does not know, and,
 * for a gateway or a worker whose functions come from a file, that file's functions, validated.
 *
 * Reading them loads the validators: zod with the config's schemas, and yaml. That is about 5 MiB
 * of heap (zod's source alone is 1.5 MiB) which a long-running process would keep to its end for
 * checks made once, at start, and which V8 counts again in every old-generation threshold under
 * load. So a gateway or a worker reads its settings in a short-lived child process
 * (settings-apart.ts) and keeps only the result; the operator commands and `asyncfn up`, which
 * load the validators for other reasons or do not last, read them here.
 */
import { readFile } from 'node:fs/promises';
import { loadConfig, unknownVariableWarnings, type Config, type LoadOptions } from '../config/index.js';
import { AsyncFnError, ConfigError } from '../errors.js';
import type { FunctionsTable } from '../functions/index.js';

export interface SettingsRequest {
  /** The YAML config file (`--config` or `ASYNCFN_CONFIG`), if any. */
  readonly configPath?: string;
  readonly load: LoadOptions;
  /** Read and validate the functions file too, when the config's functions mode is 'file'. */
  readonly functionsFile: boolean;
}

export interface Settings {
  readonly config: Readonly<Config>;
  /** About variables set but unknown (a misspelt name, an OpenFaaS setting asyncfn has not). */
  readonly warnings: readonly string[];
  /** The functions file's table, validated: only when asked for and the mode is 'file'. */
  readonly functions?: FunctionsTable;
}

/** Why reading the settings failed, as the child process reports it (settings-apart.ts rebuilds the error). */
export type SettingsFailure =
  /** A ConfigError's problems: every bad variable or functions-file entry, one line each. */
  | { readonly problems: readonly string[] }
  /** Anything else, as the CLI prints it: an asyncfn error's message, another error's stack. */
  | { readonly printed: string };

/** What the child process writes to its stdout, V8-serialized: one of these. */
export type SettingsMessage = { readonly settings: Settings } | { readonly failure: SettingsFailure };

/** Reads the settings in this process. Throws ConfigError listing every problem. */
export async function readSettings(request: SettingsRequest, env: Record<string, string | undefined>): Promise<Settings> {
  const config = loadConfig(env, request.configPath ? await readFile(request.configPath, 'utf8') : undefined, request.load);
  const warnings = unknownVariableWarnings(env);
  if (!request.functionsFile || config.functions.mode !== 'file') return { config, warnings };
  const { file, defaultNamespace, urlTemplate } = config.functions;
  const functions = await (await import('../functions/static-file.js')).loadFunctionsTable(file!, defaultNamespace, urlTemplate);
  return { config, warnings, functions };
}

/** How the child process reports `err`. */
export function failureOf(err: unknown): SettingsFailure {
  if (err instanceof ConfigError) return { problems: err.problems };
  return { printed: err instanceof AsyncFnError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err) };
}
