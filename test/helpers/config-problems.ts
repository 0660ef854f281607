import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

/** The problems a ConfigError lists; fails loudly if the config loads or something else is thrown. */
export function problemsOf(env: Record<string, string | undefined>, fileText?: string): readonly string[] {
  try {
    loadConfig(env, fileText);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError, but the config loaded');
}
