/**
 * Confines a caller's path suffix (`/a/b` after `/function/<name>`) under the function's URL.
 *
 * The suffix is appended to the function's base URL as received; an HTTP client (undici runs the
 * URL through WHATWG parsing) or the function's own server then resolves dot segments, and many
 * servers decode `%2f`, `\`, or decode twice. So everything that could climb out of the base path
 * under any of those readings is refused instead of normalised: what is accepted reaches the
 * function byte for byte.
 */
import { PathRefusedError } from '../errors.js';

/**
 * How many times a segment is percent-decoded while looking for a hidden dot segment or separator
 * (`%252e%252e` is `..` after two). A segment still holding an escape after this is refused.
 */
export const MAX_DECODE_ROUNDS = 4;

/** Longest piece of the caller's path quoted back in a refusal, characters. */
const QUOTE_MAX = 60;

const MALFORMED_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
const ESCAPE = /%[0-9A-Fa-f]{2}/;
// Space and C0 controls and DEL: never valid raw in a request target, and NUL truncates in C servers.
const RAW_CONTROL = /[\x00-\x20\x7f]/;
// Encoded, a space is an ordinary character (`%20`); NUL, CR, LF and the other controls are not.
const ENCODED_CONTROL = /[\x00-\x1f\x7f]/;
// Overlong UTF-8 forms of ASCII (%c0%ae is "." to a lenient decoder); no valid UTF-8 holds them.
const OVERLONG = /[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f]|\xf0[\x80-\x8f]/;

function quote(s: string): string {
  return JSON.stringify(s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}…` : s);
}

/** One round of percent-decoding into a byte string (one char per byte); other characters kept. */
function decodeOnce(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Why one segment is refused, looking through every layer of percent-encoding; undefined = fine. */
function segmentProblem(raw: string): string | undefined {
  let layer = raw;
  for (let round = 0; ; round += 1) {
    const encoded = round === 0 ? '' : ` (${quote(layer)} decoded ${round === 1 ? 'once' : `${round} times`})`;
    // Tomcat and others read `..;x` as `..`: the parameters do not make it a name.
    const name = layer.split(';')[0];
    if (name === '..') return `segment ${quote(raw)} is a dot-dot segment${encoded}, which would leave the function's URL`;
    if (name === '.') return `segment ${quote(raw)} is a dot segment${encoded}, which HTTP clients and servers rewrite`;
    if (layer.includes('\\')) return `segment ${quote(raw)} holds a backslash${encoded}, which servers may read as a path separator`;
    if (round > 0 && layer.includes('/')) return `segment ${quote(raw)} holds an encoded slash${encoded}, which servers may read as a path separator`;
    if (round > 0 && ENCODED_CONTROL.test(layer)) return `segment ${quote(raw)} holds an encoded NUL or control character${encoded}`;
    if (OVERLONG.test(layer)) return `segment ${quote(raw)} holds an overlong UTF-8 encoding${encoded}`;
    if (!ESCAPE.test(layer)) return undefined;
    if (round === MAX_DECODE_ROUNDS) return `segment ${quote(raw)} is percent-encoded more than ${MAX_DECODE_ROUNDS} times`;
    layer = decodeOnce(layer);
  }
}

/**
 * Why `suffix` ("" or "/a/b", percent-encoded as received) must not be appended to a function's
 * URL, as one line; undefined when it may. Refused: `.` and `..` segments in any encoding
 * (`%2e%2e`, `.%2E`, `%252e%252e`, `..;x`), encoded slashes and backslashes (`%2f`, `%5c`, also
 * double-encoded), a raw backslash, NUL/space/control characters raw or encoded, malformed
 * percent-encoding (`%zz`, a lone `%`), overlong UTF-8, and a raw `#` or `?`. Kept: everything else,
 * including `/a..b`, `/..a`, `/%20x`, empty segments and a trailing slash.
 */
export function pathSuffixProblem(suffix: string): string | undefined {
  if (suffix === '') return undefined;
  const control = RAW_CONTROL.exec(suffix);
  if (control) return `the path holds a space or control character (code ${control[0].charCodeAt(0)})`;
  // The gateway splits the query off at the first "?"; either one here came from elsewhere.
  if (suffix.includes('#') || suffix.includes('?')) return 'the path holds a "#" or "?", which would end it early';
  const malformed = MALFORMED_ESCAPE.exec(suffix);
  if (malformed) return `malformed percent-encoding ${quote(suffix.slice(malformed.index, malformed.index + 3))} in the path`;
  const segments = (suffix.startsWith('/') ? suffix.slice(1) : suffix).split('/');
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Returns `suffix` unchanged when it stays under the function's URL; throws PathRefusedError otherwise. */
export function confinePathSuffix(suffix: string): string {
  const problem = pathSuffixProblem(suffix);
  if (problem !== undefined) throw new PathRefusedError(problem);
  return suffix;
}
