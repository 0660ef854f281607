/**
 * echo: answers 200 with the request body byte for byte and the request's Content-Type, and
 * reports what the worker actually sent (method, path suffix, query) in `X-Echo-*` headers, so
 * a test or a README example can see that an async invocation arrived intact.
 */
import type { SampleFunction } from '../sample-function.js';

export const echo: SampleFunction = {
  name: 'echo',
  maxBodyBytes: 1024 * 1024,
  async handle(req) {
    return {
      status: 200,
      headers: {
        'content-type': req.headers['content-type'] ?? 'application/octet-stream',
        'x-echo-method': req.method,
        'x-echo-path': req.pathSuffix,
        'x-echo-query': req.query,
      },
      body: req.body,
    };
  },
};
