import { TimeoutError, type NatsConnection } from '@nats-io/nats-core';

/** How long one probe may wait for its answer, ms. */
const PROBE_TIMEOUT_MS = 250;
/** Probes sent at most: 20 × 250 ms, the 5 s a read would otherwise have stalled for. */
const PROBES = 20;
/** A key no process writes: the answer is "no message", which is all a probe needs. */
const PROBE_KEY = 'asyncfn-direct-get-probe';

/**
 * Resolves once `request` is answered (any answer, or any failure but a timeout), at most after
 * `probes` timeouts: whether it was answered. A "no responders" means the bucket serves no direct
 * gets at all, and any other failure is for the real read to report.
 */
export async function untilAnswered(request: () => Promise<unknown>, probes = PROBES): Promise<boolean> {
  for (let probe = 1; probe <= probes; probe++) {
    try {
      await request();
      return true;
    } catch (err) {
      if (!(err instanceof TimeoutError)) return true;
    }
  }
  return false;
}

/**
 * Waits until KV bucket `bucket` answers a direct get. On nats-server 2.9, a direct get sent just
 * after two processes created the same bucket at once (a gateway and a worker starting together)
 * is now and then never answered: about one racing create in 15 left one process's first read
 * stalled for nats.js's 5 s timeout, the next read answered (`test/integration/progress.test.ts`,
 * "two processes starting at once agree on one generated key"). A probe with a short timeout,
 * retried, costs one round trip when the bucket is opened and spares that first real read (a
 * status GET, a worker's record read, the progress key) its stall.
 */
export async function untilDirectGetAnswers(nc: NatsConnection, bucket: string): Promise<boolean> {
  const payload = JSON.stringify({ last_by_subj: `$KV.${bucket}.${PROBE_KEY}` });
  return untilAnswered(() => nc.request(`$JS.API.DIRECT.GET.KV_${bucket}`, payload, { timeout: PROBE_TIMEOUT_MS }));
}
