import { jetstreamManager } from '@nats-io/jetstream';
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../config/index.js';
import { openRecordsIfPresent, RECORDS_BUCKET } from '../queue/topology.js';
import { isFinal, isRecordKey, readRecord, waitForFinal } from '../status/wait.js';
import { keySubscriber } from '../status/key-wait.js';
import { formatRecord, recordJson } from './status-format.js';
import { connectForCommand, describeNatsError, formatDurationMs, type InspectDeps } from './status-nats.js';
import { describeError } from '../errors.js';

/** `asyncfn status` exit codes. */
export const StatusExit = {
  found: 0,
  notFound: 1,
  usage: 2,
  waitTimedOut: 3,
  failed: 4,
} as const;

/** How long `--wait` without a duration waits, ms. */
export const DEFAULT_WAIT_MS = 30_000;

export const STATUS_USAGE = `Usage: asyncfn status <call-id> [--wait[=30s]] [--json]

What asyncfn knows about one invocation, from its record in the JetStream KV bucket
${RECORDS_BUCKET}: state (queued, running, retrying, succeeded, failed, cancelled,
deadLettered), attempts, last function status, times (ISO 8601, UTC) and durations, last error.

Options:
  --wait[=duration]   wait until the invocation is final (succeeded, failed, cancelled or
                      deadLettered), at most that long: 30s without a duration; 10s, 5m, 1h...
                      (attach it with "="). Returns as soon as the final record is written:
                      it watches the record, it does not poll.
  --json              one JSON object: the record, ISO times, durationMs, totalMs, ageMs, final
  -h, --help          this text

Exit codes:
  0  found (with --wait: found in a final state)
  1  no invocation with that call id (records are kept for records_ttl, 7 days by default)
  2  bad arguments
  3  --wait: not final when the time was up; the record as it was then is printed
  4  the records could not be read: NATS unreachable, refused or not answering
     (a configuration error stops asyncfn before any command, with exit code 1)`;

/** `asyncfn status …` after parsing. */
export type StatusArgs =
  { readonly command: 'help' } | { readonly command: 'status'; readonly callId: string; readonly waitMs: number | undefined; readonly json: boolean };

/** Parses the arguments after `status`. */
export function parseStatusArgs(args: readonly string[]): { ok: true; value: StatusArgs } | { ok: false; error: string } {
  let parsed;
  try {
    parsed = parseArgs({
      // `--wait` alone means the default; a duration must be attached (`--wait=5m`), so
      // `--wait <call-id>` never takes the call id for a duration.
      args: args.map((a) => (a === '--wait' ? `--wait=${DEFAULT_WAIT_MS / 1000}s` : a)),
      options: { wait: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const message = describeError(err);
    return { ok: false, error: message.split(/\.\s/)[0] ?? message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { ok: true, value: { command: 'help' } };
  if (positionals.length !== 1) {
    return { ok: false, error: positionals.length === 0 ? 'missing call id' : `one call id expected, got ${positionals.length}` };
  }
  let waitMs: number | undefined;
  if (values.wait !== undefined) {
    const ms = parseDurationMs(values.wait);
    if (ms === undefined || ms <= 0) return { ok: false, error: `--wait="${values.wait}" is not a positive duration such as 30s, 5m or 1h` };
    waitMs = Math.ceil(ms);
  }
  return { ok: true, value: { command: 'status', callId: positionals[0]!, waitMs, json: values.json === true } };
}

/** `asyncfn status <call-id> [--wait[=30s]] [--json]` with the arguments after `status`; see STATUS_USAGE for exit codes. */
export async function runStatusCommand(args: readonly string[], deps: InspectDeps): Promise<number> {
  const now = deps.now ?? Date.now;
  const parsed = parseStatusArgs(args);
  if (!parsed.ok) {
    deps.err(`asyncfn status: ${parsed.error} (asyncfn status --help)`);
    return StatusExit.usage;
  }
  const cmd = parsed.value;
  if (cmd.command === 'help') {
    deps.out(STATUS_USAGE);
    return StatusExit.found;
  }
  const { callId, waitMs, json } = cmd;
  if (!isRecordKey(callId)) {
    deps.err(`asyncfn status: no invocation with call id "${callId}" (not a possible call id)`);
    return StatusExit.notFound;
  }

  const nc = await connectForCommand('status', deps);
  if (!nc) return StatusExit.failed;
  try {
    const kv = await openRecordsIfPresent(nc, await jetstreamManager(nc));
    if (!kv) {
      deps.err(`asyncfn status: no invocation with call id "${callId}" (no invocation records on this server: bucket ${RECORDS_BUCKET} does not exist)`);
      return StatusExit.notFound;
    }
    const record = waitMs === undefined ? await readRecord(kv, callId) : await waitForFinal(kv, keySubscriber(nc, RECORDS_BUCKET), callId, waitMs);
    if (!record) {
      deps.err(`asyncfn status: no invocation with call id "${callId}"${waitMs === undefined ? '' : ` after waiting ${formatDurationMs(waitMs)}`}`);
      return StatusExit.notFound;
    }
    if (json) deps.out(JSON.stringify(recordJson(record, now()), null, 2));
    else for (const line of formatRecord(record, now())) deps.out(line);
    if (waitMs !== undefined && !isFinal(record)) {
      deps.err(`asyncfn status: still ${record.state} after waiting ${formatDurationMs(waitMs)}`);
      return StatusExit.waitTimedOut;
    }
    return StatusExit.found;
  } catch (err) {
    deps.err(`asyncfn status: could not read the invocation record: ${describeNatsError(err)}`);
    return StatusExit.failed;
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}
