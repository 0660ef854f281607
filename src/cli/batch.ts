import { jetstreamManager, JetStreamApiCodes, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../config/index.js';
import { describeError } from '../errors.js';
import { BATCH_EVENTS_STREAM, readBatchCounts, readBatchFailures } from '../queue/batch-events.js';
import { BATCH_ID } from '../queue/envelope.js';
import { BATCHES_BUCKET, infoOrUndefined } from '../queue/topology.js';
import { batchStatusOf, batchStore, type BatchStatus, type BatchStore } from '../status/batches.js';
import { connectForCommand, describeNatsError, formatDurationMs, isoTime, type InspectDeps } from './status-nats.js';

/** `asyncfn batch` exit codes, as `asyncfn status`'s. */
export const BatchExit = { found: 0, notFound: 1, usage: 2, waitTimedOut: 3, failed: 4 } as const;

export const BATCH_USAGE = `Usage: asyncfn batch status <batch-id> [--wait[=30s]] [--json]

A batch's counts (pending, succeeded, failed, deadLettered, cancelled), progress and first
failures, from the JetStream bucket ${BATCHES_BUCKET} and stream ${BATCH_EVENTS_STREAM}.

Options:
  --wait[=duration]   wait until every item has ended, at most that long (30s without one);
                      on a terminal a progress bar shows the counts meanwhile
  --json              the status as GET /async-batch/<batch-id> answers it
  -h, --help          this text

Exit codes: 0 found (with --wait: done), 1 no such batch, 2 bad arguments, 3 --wait: not done
in time, 4 NATS unreachable or not answering.`;

/** How often a waiting `batch status` redraws its bar, ms. */
const REDRAW_MS = 500;

/** Pure: a text progress bar of `width` cells for `fraction` (0..1), with the percentage. */
export function progressBar(fraction: number, width = 30): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${(f * 100).toFixed(1).padStart(5)}%`;
}

/** Pure: the one-line summary of a batch's counts. */
export function countsLine(status: BatchStatus): string {
  const c = status.counts;
  const ended = c.succeeded + c.failed + c.deadLettered + c.cancelled;
  return `${ended}/${status.accepted} ended: ${c.succeeded} succeeded, ${c.failed} failed, ${c.deadLettered} dead-lettered, ${c.cancelled} cancelled, ${c.pending} pending`;
}

/** `asyncfn batch status <batch-id> [--wait[=30s]] [--json]`. */
export async function runBatchCommand(
  args: readonly string[],
  deps: InspectDeps & { readonly isTty?: boolean; readonly progress?: (text: string) => void },
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: args.map((a) => (a === '--wait' ? '--wait=30s' : a)),
      options: { wait: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    deps.err(`asyncfn batch: ${describeError(err).split(/\.\s/)[0]} (asyncfn batch --help)`);
    return BatchExit.usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    deps.out(BATCH_USAGE);
    return BatchExit.found;
  }
  if (positionals[0] !== 'status' || positionals.length !== 2) {
    deps.err('asyncfn batch: expected "status <batch-id>" (asyncfn batch --help)');
    return BatchExit.usage;
  }
  const batchId = positionals[1]!;
  const waitMs = values.wait === undefined ? undefined : parseDurationMs(values.wait);
  if (values.wait !== undefined && !(waitMs! > 0)) {
    deps.err(`asyncfn batch: --wait="${values.wait}" is not a positive duration such as 30s`);
    return BatchExit.usage;
  }
  if (!BATCH_ID.test(batchId)) {
    deps.err(`asyncfn batch: no batch with id "${batchId}"`);
    return BatchExit.notFound;
  }
  const nc = await connectForCommand('batch', deps);
  if (!nc) return BatchExit.failed;
  try {
    const jsm = await jetstreamManager(nc);
    // Read-only: never creates the bucket.
    const present = await infoOrUndefined(() => jsm.streams.info(`KV_${BATCHES_BUCKET}`), JetStreamApiCodes.StreamNotFound);
    const store = present ? batchStore(await new Kvm(nc).open(BATCHES_BUCKET), nc) : undefined;
    const read = async (): Promise<BatchStatus | undefined> => readStatus(store, jsm, batchId);
    let status = await read();
    if (!status) {
      deps.err(`asyncfn batch: no batch with id "${batchId}"`);
      return BatchExit.notFound;
    }
    if (waitMs !== undefined) {
      const deadline = Date.now() + waitMs;
      const draw = deps.isTty && deps.progress && !values.json ? deps.progress : undefined;
      while (!status.done && Date.now() < deadline) {
        draw?.(`\r${progressBar(status.progress)} ${countsLine(status)}`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(REDRAW_MS, Math.max(0, deadline - Date.now()))));
        status = (await read()) ?? status;
      }
      draw?.(`\r${progressBar(status.progress)} ${countsLine(status)}\n`);
    }
    if (values.json) {
      const failures = await readBatchFailures(jsm, batchId, 1, 100);
      deps.out(JSON.stringify({ ...status, failed: failures.items }, null, 2));
    } else {
      deps.out(`batch      ${status.batchId}`);
      deps.out(`function   ${status.function}.${status.namespace} (queue ${status.queue})`);
      deps.out(`state      ${status.state}${status.stopped ? ` (stopped: ${status.stopped.reason})` : ''}`);
      deps.out(`progress   ${progressBar(status.progress)}`);
      deps.out(`counts     ${countsLine(status)}`);
      deps.out(`created    ${isoTime(status.createdAtMs)}`);
      if (status.doneAtMs !== undefined) deps.out(`done       ${isoTime(status.doneAtMs)} (${formatDurationMs(status.doneAtMs - status.createdAtMs)})`);
      const failures = await readBatchFailures(jsm, batchId, 1, 10);
      for (const f of failures.items) deps.out(`failed     ${f.callId} ${f.state}${f.status === undefined ? '' : ` ${f.status}`}`);
      if (failures.nextCursor !== undefined) deps.out('failed     … (GET /async-batch/<batch-id>?cursor= lists them all)');
    }
    if (waitMs !== undefined && !status.done) {
      deps.err(`asyncfn batch: not done after waiting ${formatDurationMs(waitMs)}`);
      return BatchExit.waitTimedOut;
    }
    return BatchExit.found;
  } catch (err) {
    deps.err(`asyncfn batch: could not read the batch: ${describeNatsError(err)}`);
    return BatchExit.failed;
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}

async function readStatus(store: BatchStore | undefined, jsm: JetStreamManager, batchId: string): Promise<BatchStatus | undefined> {
  const record = await store?.get(batchId);
  if (!record) return undefined;
  return batchStatusOf(record, await readBatchCounts(jsm, batchId));
}
