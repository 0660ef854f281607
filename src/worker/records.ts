import type { Invocation, PriorRecord, RecordRequest, SettledRecord } from '../../actors/invocation.types.js';
import { FINAL_STATES, type InvocationRecord, type RecordStore } from '../status/records.js';
import type { Logger } from '../telemetry/logger.js';

/** Writes of a final record before giving up: about a minute of back-off, longer than a leader election. */
const FINAL_RECORD_ATTEMPTS = 10;

/** The status API's record for what the machine asks to record; a `running` record names the worker running it. */
export function invocationRecordOf(queue: string, request: RecordRequest, nowMs: number, worker?: string): InvocationRecord {
  const { invocation, state, outcome, resultStorage } = request;
  const final = state !== 'running' && state !== 'retrying';
  return {
    callId: invocation.callId,
    ...(invocation.parentCallId === undefined ? {} : { parentCallId: invocation.parentCallId }),
    ...(invocation.batchId === undefined ? {} : { batchId: invocation.batchId }),
    function: invocation.functionName,
    namespace: invocation.namespace,
    queue,
    state,
    attempts: request.attempt,
    status: outcome?.status,
    enqueuedAtMs: invocation.enqueuedAtMs,
    notBeforeMs: invocation.notBeforeMs,
    startedAtMs: request.startedAtMs,
    finishedAtMs: final ? nowMs : undefined,
    durationMs: outcome && state !== 'running' ? Math.round(outcome.durationMs) : undefined,
    error: request.error,
    result:
      resultStorage && outcome
        ? { ...resultStorage, status: outcome.status, contentType: outcome.contentType, contentEncoding: outcome.contentEncoding, bytes: outcome.body.length }
        : undefined,
    worker: state === 'running' ? worker : undefined,
  };
}

/**
 * What a redelivery of `invocation` learns from its record: the final state it was settled in, or
 * the other worker its `running` record names (`self` is this worker), or nothing. A record of
 * another enqueue time is another invocation's (a dead letter replayed, a caller reusing its
 * X-Call-Id), so it tells nothing here.
 */
export function priorRecordOf(invocation: Pick<Invocation, 'enqueuedAtMs'>, record: InvocationRecord | undefined, self: string): PriorRecord | undefined {
  if (record === undefined || record.enqueuedAtMs !== invocation.enqueuedAtMs) return undefined;
  if (FINAL_STATES.has(record.state)) return { settled: { state: record.state as SettledRecord['state'], attempts: record.attempts, status: record.status } };
  if (record.state === 'running' && record.worker !== undefined && record.worker !== self) return { runningOn: record.worker };
  return undefined;
}

export interface RecordWriterOptions {
  readonly records: RecordStore;
  /** A confirmed write of a final record (e.g. through the worker's confirmer); default `records.put`. */
  readonly putConfirmed?: (record: InvocationRecord) => Promise<void>;
  readonly queue: string;
  /** This worker, named in its `running` records (src/worker/holders.ts). */
  readonly worker?: string | undefined;
  readonly logger: Logger;
  /** Pause before the n-th retry of a final write, ms; default 250 ms doubling up to 8 s. */
  readonly retryDelayMs?: (attempt: number) => number;
  /** Wall clock, unix ms. */
  readonly now?: () => number;
}

/**
 * The machine's `record` effect for one queue. `running` and `retrying` are informational: one
 * unconfirmed write, batched with the acks of the same loop turn. A final state is what
 * long-polls and `asyncfn status` wait for: confirmed, and retried while the bucket has no leader
 * (a node of a cluster just died); it rejects only after every attempt failed.
 */
export function recordWriter(opts: RecordWriterOptions): (request: RecordRequest) => Promise<void> {
  const now = opts.now ?? Date.now;
  const retryDelayMs = opts.retryDelayMs ?? ((attempt: number) => Math.min(8_000, 250 * 2 ** attempt));
  const put = opts.putConfirmed ?? ((r: InvocationRecord) => opts.records.put(r));
  /** A final write that failed once: retried after a pause, until FINAL_RECORD_ATTEMPTS. */
  const retry = async (record: InvocationRecord, firstError: unknown): Promise<void> => {
    let err = firstError;
    for (let attempt = 1; ; attempt++) {
      if (attempt >= FINAL_RECORD_ATTEMPTS) {
        opts.logger.warn({ err, callId: record.callId, state: record.state }, 'could not write the final invocation record');
        throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, retryDelayMs(attempt)).unref());
      try {
        await put(record);
        return;
      } catch (error) {
        err = error;
      }
    }
  };
  return (request) => {
    let record: InvocationRecord;
    try {
      record = invocationRecordOf(opts.queue, request, now(), opts.worker);
    } catch (err) {
      return Promise.reject(err);
    }
    // Every write goes out at once, in the order asked, on the one connection: a "running"
    // written before the final record can never land after it.
    if (request.state === 'running' || request.state === 'retrying') {
      try {
        opts.records.putUnconfirmed(record);
      } catch (err) {
        opts.logger.warn({ err, callId: record.callId }, 'could not write the invocation record');
      }
      return Promise.resolve();
    }
    // The first write without a frame of its own waiting on it (it is every invocation's); a
    // failure goes on in `retry`.
    let first: Promise<void>;
    try {
      first = put(record);
    } catch (err) {
      first = Promise.reject(err);
    }
    return first.catch((err: unknown) => retry(record, err));
  };
}
