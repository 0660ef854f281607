import { errors, type NatsConnection } from '@nats-io/nats-core';
import { describeError } from '../errors.js';
import { QueueUnavailableError } from '../queue/errors.js';
import { INFLIGHT_SUBJECT, parseWorkerInFlight, type InFlightRequest, type WorkerInFlight } from '../status/inflight.js';
import type { InvocationProgress } from '../status/records.js';

/** `GET /system/inflight`: every worker's in-flight invocations, gathered by one request. */
export interface InFlightView {
  /** When the gateway asked, Unix ms. */
  readonly at: number;
  /** One entry per worker that answered in time, by worker name. */
  readonly workers: readonly WorkerInFlight[];
  /** Matching invocations over all workers (listed or not). */
  readonly total: number;
}

export interface GatherOptions {
  /** The gather ends this long after the last reply, ms; default 150. */
  readonly stallMs?: number;
  /** Longest wait for the first reply, and for all of them, ms; default 1000. */
  readonly maxWaitMs?: number;
  /** Unix ms; default Date.now. */
  readonly now?: () => number;
}

/** Asks every worker for its in-flight view (src/status/inflight.ts). */
export type InFlightGatherer = (request: InFlightRequest) => Promise<InFlightView>;

/**
 * Scatter-gather over core NATS: one request on INFLIGHT_SUBJECT, every worker's reply until none
 * has come for `stallMs` (nats.js `requestMany`, strategy "stall"), and never past `maxWaitMs` plus
 * one stall. No worker subscribed: an empty view. A failure of NATS: QueueUnavailableError (503).
 */
export function inFlightGatherer(nc: NatsConnection, opts: GatherOptions = {}): InFlightGatherer {
  const stallMs = opts.stallMs ?? 150;
  const maxWaitMs = opts.maxWaitMs ?? 1000;
  const now = opts.now ?? Date.now;
  return async (request) => {
    const at = now();
    const startedMs = performance.now();
    const workers: WorkerInFlight[] = [];
    try {
      const replies = await nc.requestMany(INFLIGHT_SUBJECT, JSON.stringify(request), { strategy: 'stall', stall: stallMs, maxWait: maxWaitMs });
      for await (const msg of replies) {
        const reply = parseWorkerInFlight(msg.data);
        if (reply) workers.push(reply);
        // The stall timer restarts with each reply: many workers answering slowly must not hold the request.
        if (performance.now() - startedMs > maxWaitMs) break;
      }
    } catch (err) {
      if (!(err instanceof errors.NoRespondersError)) throw new QueueUnavailableError(`in-flight request failed: ${describeError(err)}`, { cause: err });
    }
    workers.sort((a, b) => (a.worker < b.worker ? -1 : a.worker > b.worker ? 1 : 0));
    return { at, workers, total: workers.reduce((sum, w) => sum + w.total, 0) };
  };
}

/** Most records one `progress=true` request reads: the invocations listed after them come without progress. */
export const INFLIGHT_PROGRESS_READS = 200;

/** Reads the progress an invocation's function last reported (its record's `progress`), if any. */
export type ProgressReader = (callId: string) => Promise<InvocationProgress | undefined>;

/**
 * The view with each listed invocation's latest reported progress (`GET /system/inflight?progress=true`):
 * one record read per listed invocation, the first `maxReads` of them, all at once. Only the asker
 * pays, when asking: the workers keep no progress. A read that fails or finds none leaves the
 * invocation without `progress`; the list itself never fails for it.
 */
export async function withProgress(view: InFlightView, read: ProgressReader, maxReads = INFLIGHT_PROGRESS_READS): Promise<InFlightView> {
  const callIds = view.workers.flatMap((w) => w.invocations.map((i) => i.callId)).slice(0, maxReads);
  if (callIds.length === 0) return view;
  const settled = await Promise.allSettled(callIds.map((id) => read(id)));
  const progress = new Map<string, InvocationProgress>();
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled' && s.value !== undefined) progress.set(callIds[i]!, s.value);
  });
  if (progress.size === 0) return view;
  return {
    ...view,
    workers: view.workers.map((w) => ({
      ...w,
      invocations: w.invocations.map((i) => {
        const p = progress.get(i.callId);
        return p === undefined ? i : { ...i, progress: p };
      }),
    })),
  };
}
