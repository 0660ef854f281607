/** RFC 9110's token: a header name (and an HTTP method). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A field value as it goes on the wire: visible ASCII, obs-text, spaces and tabs; no CR, LF, NUL or other control character, nothing above 0xff (undici's rule). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether `name` is an RFC 9110 token. */
export function isToken(name: string): boolean {
  return TOKEN.test(name);
}

/** Whether `value` can be written as a field value byte for byte (latin1). */
export function isFieldValue(value: string): boolean {
  return FIELD_VALUE.test(value);
}
