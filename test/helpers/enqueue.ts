import { request } from 'undici';

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
    const res = await request(`${gatewayUrl}/async-function/${fn}`, {
      method: 'POST',
      body: body(i),
      headers: { 'x-callback-url': callbackUrl },
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
