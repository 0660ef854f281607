import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { parseArgs } from 'node:util';
import { describeError } from '../errors.js';
import { CANCELLATIONS_BUCKET, openKvBucket, openRecordsIfPresent, RECORDS_BUCKET, type KvBucketOptions } from '../queue/topology.js';
import { CANCEL_WINDOW, cancelInvocations, scanInvocations, type InvocationMatches } from '../status/bulk-cancel.js';
import { cancellationRequests } from '../status/cancellations.js';
import { CANCELLABLE_STATES, hasInvocationCriteria, INVOCATION_FILTER_FIELDS, parseInvocationFilter, type InvocationFilter } from '../status/filters.js';
import type { OperatorCommandDeps } from './operator-deps.js';
import { progressBar } from './progress.js';
import { connectForCommand, describeNatsError } from './status-nats.js';

/** `asyncfn cancel` exit codes. */
export const CancelExit = {
  /** Cancelled every match, or a dry run counted them. */
  done: 0,
  /** Not confirmed (nothing changed), NATS unreachable, or some markers could not be written. */
  failed: 1,
  usage: 2,
} as const;

/** More matches than this need `--yes` (as `asyncfn dlq replay`). */
export const CANCEL_CONFIRM_ABOVE = 10;

export const CANCEL_USAGE = `Usage: asyncfn cancel [filters] [--dry-run] [--yes] [--all]

Cancels every invocation that matches the filters, as DELETE /async-function/<call-id> does one:
a queued (or scheduled, or retrying) one is skipped when it is delivered, a running one is
aborted; each is reported to its callback with status 499 and its record says cancelled.
It reads every record of the KV bucket ${RECORDS_BUCKET} once (kept for records_ttl), then
writes one cancellation marker per match, ${CANCEL_WINDOW} at a time.

Filters (all must match; at least one, or --all):
  --function <name>          function name, or name.namespace
  --namespace <ns>           namespace
  --queue <name>             queue the invocation was published to
  --state <s>[,<s>...]       ${CANCELLABLE_STATES.join(', ')} (default: all of them)
  --batch <id>               the batch it was submitted in
  --since <duration|time>    enqueued at or after: 30m, 2h (that long ago) or RFC 3339
  --before <duration|time>   enqueued before
  --until <duration|time>    enqueued at or before

Options:
  --dry-run                  count the matches, by state and by function; cancel nothing
  --yes, -y                  needed to cancel more than ${CANCEL_CONFIRM_ABOVE}
  --all                      allow no filter at all: every unfinished invocation
  -h, --help                 this text

Exit codes: 0 done (or counted), 1 not confirmed, NATS unreachable or some cancellations not
written, 2 bad arguments.`;

/** `asyncfn cancel …` after parsing. */
export type CancelArgs =
  { readonly command: 'help' } | { readonly command: 'cancel'; readonly filter: InvocationFilter; readonly dryRun: boolean; readonly yes: boolean };

const OPTIONS = {
  function: { type: 'string' },
  namespace: { type: 'string' },
  queue: { type: 'string' },
  state: { type: 'string' },
  batch: { type: 'string' },
  since: { type: 'string' },
  before: { type: 'string' },
  until: { type: 'string' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  all: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses the arguments after `cancel`; `nowMs` anchors relative times. */
export function parseCancelArgs(args: readonly string[], nowMs: number): { ok: true; value: CancelArgs } | { ok: false; error: string } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    const message = describeError(err);
    return { ok: false, error: message.split(/\.\s/)[0] ?? message };
  }
  const { values, positionals } = parsed;
  if (values.help) return { ok: true, value: { command: 'help' } };
  if (positionals.length > 0)
    return {
      ok: false,
      error: `unexpected argument "${positionals[0]}": cancel takes filters (--function, --state, ...); one call id is DELETE /async-function/<call-id>`,
    };
  const options = Object.fromEntries(INVOCATION_FILTER_FIELDS.map((name) => [name, values[name]]));
  const filter = parseInvocationFilter(options, nowMs, { allowedStates: CANCELLABLE_STATES });
  if (!filter.ok) return filter;
  if (!hasInvocationCriteria(filter.value) && values.all !== true) {
    return { ok: false, error: 'no filter: give at least one (--function, --queue, --state, --batch, --since, ...), or --all to cancel every unfinished invocation' };
  }
  return { ok: true, value: { command: 'cancel', filter: withCancellableStates(filter.value), dryRun: values['dry-run'] === true, yes: values.yes === true } };
}

/** A filter without states selects every state a cancellation still changes, never a final one. */
export function withCancellableStates(filter: InvocationFilter): InvocationFilter {
  return filter.states === undefined ? { ...filter, states: CANCELLABLE_STATES } : filter;
}

/** What `asyncfn cancel` needs from its caller. */
export interface CancelDeps extends OperatorCommandDeps {
  /** Options of the cancellations bucket if it must be created (the gateway's: `scheduledBucketOptions(config)`). */
  readonly bucketOptions: KvBucketOptions;
}

/** `asyncfn cancel [filters] [--dry-run] [--yes] [--all]` with the arguments after `cancel`; see CANCEL_USAGE for exit codes. */
export async function runCancelCommand(args: readonly string[], deps: CancelDeps): Promise<number> {
  const now = deps.now ?? Date.now;
  const parsed = parseCancelArgs(args, now());
  if (!parsed.ok) {
    deps.err(`asyncfn cancel: ${parsed.error} (asyncfn cancel --help)`);
    return CancelExit.usage;
  }
  const cmd = parsed.value;
  if (cmd.command === 'help') {
    deps.out(CANCEL_USAGE);
    return CancelExit.done;
  }
  const nc = await connectForCommand('cancel', deps);
  if (!nc) return CancelExit.failed;
  try {
    const kv = await openRecordsIfPresent(nc, await jetstreamManager(nc));
    if (!kv) {
      deps.err(`asyncfn cancel: no invocation records on this server (bucket ${RECORDS_BUCKET} does not exist)`);
      deps.out(cmd.dryRun ? '0 invocations would be cancelled' : 'cancelled 0 of 0');
      return CancelExit.done;
    }
    const matches = await scanInvocations(jetstream(nc), cmd.filter);
    if (cmd.dryRun) {
      for (const line of formatMatches(matches, 'would be cancelled')) deps.out(line);
      return CancelExit.done;
    }
    const total = matches.callIds.length;
    if (total > CANCEL_CONFIRM_ABOVE && !cmd.yes) {
      for (const line of formatMatches(matches, 'would be cancelled')) deps.out(line);
      deps.out('pass --yes to cancel them');
      return CancelExit.failed;
    }
    const requests = cancellationRequests(await openKvBucket(nc, CANCELLATIONS_BUCKET, deps.bucketOptions));
    const progress = progressBar('cancelled', total, deps);
    const outcome = await cancelInvocations(requests, matches, (done) => progress.update(done));
    progress.finish();
    deps.out(`cancelled ${outcome.cancelled} of ${total} (${matches.scanned} records read)`);
    if (outcome.failed > 0) {
      deps.err(`asyncfn cancel: ${outcome.failed} cancellations could not be written (run it again to retry them): ${describeNatsError(outcome.firstError)}`);
      return CancelExit.failed;
    }
    return CancelExit.done;
  } catch (err) {
    deps.err(`asyncfn cancel: ${describeNatsError(err)}`);
    return CancelExit.failed;
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}

/** The count of matches, then their division by state and by function. */
export function formatMatches(matches: Omit<InvocationMatches, 'enqueuedAtMs'>, verb: string): string[] {
  const total = matches.callIds.length;
  const lines = [`${total} ${total === 1 ? 'invocation' : 'invocations'} ${verb} (${matches.scanned} records read)`];
  if (total === 0) return lines;
  const breakdown = (counts: Readonly<Record<string, number>>): string =>
    Object.entries(counts)
      .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
      .map(([name, n]) => `${name} ${n}`)
      .join(', ');
  lines.push(`  by state:    ${breakdown(matches.byState)}`, `  by function: ${breakdown(matches.byFunction)}`);
  return lines;
}
