/** The console's pages by URL path (pure; the router in router.ts follows the browser's location). */
export type Route =
  | { readonly page: 'queues' }
  | { readonly page: 'inflight' }
  | { readonly page: 'invocation'; readonly callId: string }
  | { readonly page: 'deadLetters' }
  | { readonly page: 'batch'; readonly batchId: string }
  | { readonly page: 'notFound' };

/** Where the gateway serves the console (vite's `base`). */
export const BASE = '/ui';

/** The page of a location's path: `/ui` and `/ui/` are the queues; `/ui/invocations/<call-id>` one invocation. */
export function routeOf(pathname: string): Route {
  if (pathname !== BASE && !pathname.startsWith(`${BASE}/`)) return { page: 'notFound' };
  const parts = pathname
    .slice(BASE.length)
    .split('/')
    .filter((p) => p !== '');
  const [first, second = '', ...rest] = parts;
  if (rest.length > 0) return { page: 'notFound' };
  const id = safeDecode(second);
  if (first === undefined || (first === 'queues' && second === '')) return { page: 'queues' };
  if (first === 'inflight' && second === '') return { page: 'inflight' };
  if (first === 'dead-letters' && second === '') return { page: 'deadLetters' };
  if (first === 'invocations' && id !== undefined) return { page: 'invocation', callId: id };
  if (first === 'batches' && id !== undefined) return { page: 'batch', batchId: id };
  return { page: 'notFound' };
}

/** The path of a page. */
export const paths = {
  queues: `${BASE}/queues`,
  inflight: `${BASE}/inflight`,
  deadLetters: `${BASE}/dead-letters`,
  invocation: (callId = '') => `${BASE}/invocations/${encodeURIComponent(callId)}`,
  batch: (batchId = '') => `${BASE}/batches/${encodeURIComponent(batchId)}`,
};

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}
