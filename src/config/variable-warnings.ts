import { OPENFAAS_ALIASES, OPENFAAS_UNSUPPORTED } from './openfaas-names.js';
import { VARIABLE_NAMES } from './variables.js';

/**
 * Warnings about environment variables asyncfn does not read but that look like settings meant
 * for it: a misspelt `max_inflihgt` or `RETRY_HTTP_CODES` would otherwise be ignored in silence,
 * as OpenFaaS ignores them. Warnings, not errors: the environment of a container holds variables
 * meant for other programs, and a guess must never stop a start.
 */

/** Variables read outside src/config/variables.ts (src/cli/main.ts). */
const OTHER_KNOWN: readonly string[] = ['ASYNCFN_CONFIG'];

/** Every name asyncfn reads from the environment: its variables, their OpenFaaS aliases, the rest. */
const KNOWN_NAMES: readonly string[] = [...VARIABLE_NAMES, ...Object.keys(OPENFAAS_ALIASES), ...OTHER_KNOWN];

/**
 * Words that make a lower_snake_case name look like an asyncfn or OpenFaaS setting. Kept to
 * words of this domain: `http_proxy`, `no_proxy` and the like must not be warned about.
 */
const SETTING_WORDS: ReadonlySet<string> = new Set([
  'ack',
  'asyncfn',
  'backoff',
  'callback',
  'callbacks',
  'dlq',
  'faas',
  'gateway',
  'idempotency',
  'inflight',
  'nats',
  'queue',
  'queues',
  'retry',
  'retries',
  'stream',
  'upstream',
  'webhook',
  'worker',
]);

const LOWER_SNAKE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

/** npm (and pnpm, yarn) set npm_* for scripts: `npm start` gets `npm_package_bin_asyncfn`. */
const OTHER_PROGRAMS = /^npm_/;

/**
 * One line per environment variable that asyncfn does not read but that looks meant for it:
 * a known OpenFaaS name asyncfn has no equivalent for (with what to use instead), a known name
 * in the wrong case, or a lower_snake_case name with a setting word (`nats`, `retry`, `queue`,
 * `max_…`, …) or close to a known name, with a "did you mean" when one is close. Pure.
 */
export function unknownVariableWarnings(env: Readonly<Record<string, string | undefined>>): string[] {
  const warnings: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value.trim() === '' || KNOWN_NAMES.includes(name) || OTHER_PROGRAMS.test(name)) continue;
    const warning = warningFor(name, value.trim(), env);
    if (warning !== undefined) warnings.push(warning);
  }
  return warnings.sort();
}

function warningFor(name: string, value: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  const unsupported = Object.hasOwn(OPENFAAS_UNSUPPORTED, name) ? OPENFAAS_UNSUPPORTED[name] : undefined;
  if (unsupported !== undefined) {
    return unsupported.harmless?.(value, env) === true ? undefined : `${name} is an OpenFaaS setting asyncfn does not read: ${unsupported.hint}`;
  }
  const sameButCase = KNOWN_NAMES.find((known) => known.toLowerCase() === name.toLowerCase());
  if (sameButCase !== undefined) return `${name} is not read: names are case-sensitive (did you mean ${describe(sameButCase)}?)`;
  if (!LOWER_SNAKE.test(name)) return undefined;
  const near = nearestKnownName(name);
  const words = name.split('_');
  if (near === undefined && words[0] !== 'max' && !words.some((word) => SETTING_WORDS.has(word))) return undefined;
  return `${name} is not an asyncfn variable and is ignored${near === undefined ? '' : ` (did you mean ${describe(near)}?)`}`;
}

function describe(known: string): string {
  const canonical = Object.hasOwn(OPENFAAS_ALIASES, known) ? OPENFAAS_ALIASES[known] : undefined;
  return canonical === undefined ? known : `${known}, the OpenFaaS Pro name of ${canonical}`;
}

/** The known name closest to `name`, if it is within a typo or two (about one edit per 4 characters, at most 3). */
export function nearestKnownName(name: string): string | undefined {
  const limit = Math.max(1, Math.min(3, Math.floor(name.length / 4)));
  let best: { name: string; distance: number } | undefined;
  for (const known of KNOWN_NAMES) {
    const distance = editDistance(name.toLowerCase(), known.toLowerCase());
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name: known, distance };
  }
  return best?.name;
}

/** Damerau–Levenshtein distance (optimal string alignment): a swapped pair of letters counts as one edit. */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}
