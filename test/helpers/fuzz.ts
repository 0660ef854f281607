import fc from 'fast-check';
import type { Test } from 'tap';

/**
 * Settings shared by the fuzz tests (test/fuzz/): bounded and reproducible by default, scaled up
 * from the environment. `FUZZ_SEED` replays a run (fast-check prints the seed and path of a
 * failure); `FUZZ_RUNS` sets the number of runs of every property (`npm run fuzz` uses 2000).
 */
export interface FuzzRun {
  readonly seed: number;
  readonly numRuns: number;
}

/** The seed CI uses when FUZZ_SEED is not set. */
export const DEFAULT_FUZZ_SEED = 20_240_605;

export function fuzzRun(t: Test, what: string, defaultRuns: number): FuzzRun {
  const seed = intFromEnv('FUZZ_SEED') ?? DEFAULT_FUZZ_SEED;
  const numRuns = intFromEnv('FUZZ_RUNS') ?? defaultRuns;
  t.comment(`${what}: fast-check seed ${seed}, ${numRuns} runs (FUZZ_SEED, FUZZ_RUNS to change)`);
  return { seed, numRuns };
}

/**
 * fc.assert with the run's seed and count. On failure fast-check's report (seed, path,
 * counterexample) becomes the test failure; `examples` are regressions that always run first.
 */
export async function assertProperty<Ts extends [unknown, ...unknown[]]>(
  run: FuzzRun,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  examples: Ts[] = [],
  opts: { shrink?: boolean } = {},
): Promise<void> {
  await fc.assert(property as fc.IAsyncProperty<Ts>, {
    seed: run.seed,
    numRuns: run.numRuns,
    examples,
    // Properties against shared, stateful servers report the first failure as it is: shrinking
    // would replay inputs against state the failed run left behind.
    endOnFailure: opts.shrink === false,
  });
}

/**
 * One header line, `name`, a colon (or none) and a value, mostly made of ordinary characters and
 * sometimes of one that decides whether a reader takes it: separators, controls, CR, LF, DEL,
 * obs-text, a character above 0xff. For properties that state a header reader's rule.
 */
export function headerLine(): fc.Arbitrary<string> {
  const char = (usual: string) =>
    fc.oneof(
      { arbitrary: fc.constantFrom(...usual.split('')), weight: 12 },
      { arbitrary: fc.constantFrom(...' :\t\r\n\x00\x7f\x80\xe9\xff\u0100"(,;'.split('')), weight: 1 },
    );
  return fc
    .tuple(fc.string({ unit: char('aZ9-_!~'), maxLength: 8 }), fc.constantFrom(':', ': ', ''), fc.string({ unit: char('aZ9 \t-_/=,'), maxLength: 12 }))
    .map(([name, colon, value]) => name + colon + value);
}

/** Counts cases per class of input, printed at the end as the fuzz run's figures. */
export class Tally {
  readonly #counts = new Map<string, number>();

  add(key: string, n = 1): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + n);
  }

  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  print(t: Test, title: string): void {
    const rows = [...this.#counts.entries()].sort(([a], [b]) => a.localeCompare(b));
    t.comment(`${title}: ${rows.map(([k, n]) => `${k}=${n}`).join(', ')}`);
  }
}

function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not "${raw}"`);
  return n;
}

/** HTTP token characters (RFC 9110 §5.6.2): valid in header names and methods. */
export const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** A header name valid per HTTP: one or more token characters. */
export function httpToken(maxLength = 24): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength });
}

/**
 * A header value valid per HTTP as node hands it over: VCHAR, obs-text (latin1 0x80-0xFF), and
 * SP/HTAB inside, never at either end (node trims them).
 */
export function httpFieldValue(maxLength = 64): fc.Arbitrary<string> {
  const vchar = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
    { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
    { weight: 1, arbitrary: fc.constantFrom(0x20, 0x09) },
  );
  return fc.array(vchar, { maxLength }).map((codes) => String.fromCharCode(...codes).replace(/^[ \t]+|[ \t]+$/g, ''));
}
