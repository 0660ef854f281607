/**
 * What a call id may be: letters, digits and `-_=` in dot-separated parts, 1-128 characters. A call
 * id is a header value and a JetStream KV key, where an empty token (a leading, trailing or doubled
 * dot) is invalid. The gateway checks a caller's X-Call-Id with it, the worker an OpenFaaS
 * QueueRequest's.
 */
const CALL_ID = /^[A-Za-z0-9_=-]+(?:\.[A-Za-z0-9_=-]+)*$/;
export const CALL_ID_MAX_LENGTH = 128;

/** The rule, as said back to whoever broke it. */
export const CALL_ID_RULE = '1-128 characters of A-Z a-z 0-9 _ = - in dot-separated parts';

export function isCallId(value: string): boolean {
  return value.length <= CALL_ID_MAX_LENGTH && CALL_ID.test(value);
}
