/** RFC 9110's tchar, a character of a token: a header name (and an HTTP method). As regular-expression source. */
export const TOKEN_CHAR = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]";
/**
 * A character of a field value as it goes on the wire: visible ASCII, obs-text, spaces and tabs;
 * no CR, LF, NUL or other control character, nothing above 0xff (undici's rule). As
 * regular-expression source.
 */
export const FIELD_VALUE_CHAR = '[\\t\\x20-\\x7e\\x80-\\xff]';
const TOKEN = new RegExp(`^${TOKEN_CHAR}+$`);
const FIELD_VALUE = new RegExp(`^${FIELD_VALUE_CHAR}*$`);

/** Whether `name` is an RFC 9110 token. */
export function isToken(name: string): boolean {
  return TOKEN.test(name);
}

/** Whether `value` can be written as a field value byte for byte (latin1). */
export function isFieldValue(value: string): boolean {
  return FIELD_VALUE.test(value);
}

/**
 * Header names as read, each with its lower-case form (the key of node's `headers` object), for
 * the names seen before: a peer sends the same handful on every message. A name read again is
 * looked up instead of lower-cased, and its key is a string V8 has already used as a property name
 * (BENCHMARKS.md, "Header names kept"). Bounded, so that a peer sending ever new names cannot grow
 * it; past the bound a name is lower-cased each time, as before.
 */
export class LowerCaseNames {
  readonly #keys = new Map<string, string>();
  readonly #max: number;

  constructor(max = 256) {
    this.#max = max;
  }

  of(name: string): string {
    let key = this.#keys.get(name);
    if (key === undefined) {
      key = name.toLowerCase();
      if (this.#keys.size < this.#max) this.#keys.set(name, key);
    }
    return key;
  }

  get size(): number {
    return this.#keys.size;
  }
}
