import { request } from 'undici';

/** How long one enqueue may wait for the gateway's answer, ms (undici's default is 300 s). */
const ANSWER_TIMEOUT_MS = 30_000;

/** POSTs `count` async invocations and returns their call ids; every one must be answered 202. */
export async function enqueueMany(
  gatewayUrl: string,
  fn: string,
  count: number,
  callbackUrl: string,
  body: (i: number) => string = (i) => `job-${i}`,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    // Bounded well below tap's timeout: a gateway that never answers fails here, naming the request.
    const res = await request(`${gatewayUrl}/async-function/${fn}`, {
      method: 'POST',
      body: body(i),
      headers: { 'x-callback-url': callbackUrl },
      headersTimeout: ANSWER_TIMEOUT_MS,
      bodyTimeout: ANSWER_TIMEOUT_MS,
    }).catch((err: unknown) => {
      throw new Error(`enqueue ${i} to ${gatewayUrl}/async-function/${fn} got no answer: ${String(err)}`, { cause: err });
    });
    await res.body.dump();
    if (res.statusCode !== 202) throw new Error(`enqueue ${i} answered ${res.statusCode}`);
    ids.push(String(res.headers['x-call-id']));
  }
  return ids;
}

/** Call ids that received more than one callback. */
export function duplicates(callIds: readonly string[]): number {
  return callIds.length - new Set(callIds).size;
}
