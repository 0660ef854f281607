/**
 * The job the peers' workers run per message (bullmq-worker.mjs, plain-worker.mjs), in the shape
 * of an asyncfn invocation: POST the body to the function with undici, then POST the function's
 * answer to the callback URL with the OpenFaaS callback headers. One function for both, so the
 * peers do the same HTTP work by construction. Rejects when the callback is not answered 2xx.
 */
import { request } from 'undici';

export async function runJob({ functionUrl, callbackUrl, callId, body, dispatcher }) {
  const startedAt = Date.now();
  const fn = await request(functionUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-call-id': callId },
    body,
    dispatcher,
  });
  const result = Buffer.from(await fn.body.arrayBuffer());
  const callback = await request(callbackUrl, {
    method: 'POST',
    headers: {
      'content-type': fn.headers['content-type'] ?? 'application/octet-stream',
      'x-call-id': callId,
      'x-function-status': String(fn.statusCode),
      'x-function-name': 'bench',
      'x-duration-seconds': String((Date.now() - startedAt) / 1000),
    },
    body: result,
    dispatcher,
  });
  await callback.body.dump();
  if (callback.statusCode >= 300) throw new Error(`callback answered ${callback.statusCode}`);
}
