import type { Invocation } from '../../actors/invocation.types.js';

/** A plain invocation of function "fn" with a callback URL; override what a test is about. */
export function testInvocation(overrides: Partial<Invocation> = {}): Invocation {
  return {
    callId: 'c1',
    functionName: 'fn',
    namespace: 'openfaas-fn',
    method: 'POST',
    path: '',
    query: '',
    headers: [],
    body: new Uint8Array(),
    enqueuedAtMs: 0,
    callbackUrl: 'http://cb.test/',
    ...overrides,
  };
}
