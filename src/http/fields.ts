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
 * `text[from, to)` without the spaces and tabs around it: RFC 9110's OWS. `String#trim` takes
 * more (every Unicode space) and, given a slice, makes two strings where this makes one.
 */
export function trimOws(text: string, from = 0, to = text.length): string {
  while (from < to && isOws(text.charCodeAt(from))) from++;
  while (to > from && isOws(text.charCodeAt(to - 1))) to--;
  return text.slice(from, to);
}

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
