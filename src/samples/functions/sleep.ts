/**
 * sleep: waits `?duration=` (default 2s, max 1h), then answers 200 "slept 2s". Like the `sleep`
 * function in the OpenFaaS store, which also sleeps 2s by default; here the duration comes from
 * the query so one deployment serves every demo. A long sleep is how to watch ack extension work.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { durationParam, formatDuration } from '../duration.js';
import { queryParam, textResponse, type SampleFunction } from '../sample-function.js';

export const sleep: SampleFunction = {
  name: 'sleep',
  maxBodyBytes: 64 * 1024,
  async handle(req) {
    const duration = durationParam('duration', queryParam(req.query, 'duration') ?? '2s');
    if (!duration.ok) return textResponse(400, `${duration.problem}\n`);
    // The signal clears the timer when the client goes away (worker aborted, upstream timeout).
    await delay(duration.ms, undefined, { signal: req.signal });
    return textResponse(200, `slept ${formatDuration(duration.ms)}\n`);
  },
};
