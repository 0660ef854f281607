import type { DeadLetter } from '../../queue/dead-letter.js';
import type { DeadLetterFilter } from '../../dead-letters/filters.js';
import { countDeadLetters, purgeDeadLetters, purgeScope } from '../../dead-letters/purge.js';
import { countLine, formatShow, formatTable, listJson, showJson } from './format.js';
import { getDeadLetter, readBounds, selectDeadLetters, type DeadLetterStreamAccess, type StreamBounds } from '../../dead-letters/read.js';
import { matchDeadLetters, NO_DEAD_LETTERS, replayDeadLetters, type DeadLetterMatches } from '../../dead-letters/replay-many.js';
import { progressBar } from '../progress.js';
import { DEAD_LETTER_STREAM, PAYLOAD_BUCKET } from '../../queue/topology.js';
import { describeError } from '../../errors.js';

/** What the commands run with: JetStream, two output lines sinks and a clock. */
export interface DlqContext extends DeadLetterStreamAccess {
  /** Results: tables, JSON, final counts. */
  readonly out: (line: string) => void;
  /** Warnings, progress and errors. */
  readonly err: (line: string) => void;
  /** Unix ms. */
  readonly now: () => number;
  /** How long to wait for each replay's PubAck; ms. */
  readonly publishTimeoutMs: number;
  /** Raw writes to stderr when it is a terminal: progress is a bar there, a few lines elsewhere. */
  readonly tty?: ((chunk: string) => void) | undefined;
}

/** More matches than this need `--yes` to replay. */
export const REPLAY_CONFIRM_ABOVE = 10;

export async function listCommand(ctx: DlqContext, filter: DeadLetterFilter, json: boolean): Promise<number> {
  const bounds = await boundsOrEmpty(ctx);
  let missing = 0;
  const letters: DeadLetter[] = [];
  const onMissing = (seq: number): void => {
    missing += 1;
    ctx.err(`dead letter ${seq} not found`);
  };
  // Headers are all a listing needs; bodies stay on the server.
  for await (const found of selectDeadLetters(ctx, filter, bounds, { headersOnly: true, onMissing })) {
    if (json) ctx.out(JSON.stringify(listJson(found.letter)));
    letters.push(found.letter);
  }
  if (json) {
    // stdout stays one JSON object per line; the count goes with the diagnostics.
    ctx.err(countLine(letters.length));
  } else {
    if (letters.length > 0) for (const line of formatTable(letters)) ctx.out(line);
    ctx.out(countLine(letters.length));
  }
  return missing > 0 ? 1 : 0;
}

export async function showCommand(ctx: DlqContext, seq: number, json: boolean): Promise<number> {
  const bounds = await readBounds(ctx.jsm);
  const found = bounds ? await getDeadLetter(ctx.jsm, seq) : undefined;
  if (!found) {
    ctx.err(`dead letter ${seq} not found`);
    return 1;
  }
  if (json) ctx.out(JSON.stringify(showJson(found), null, 2));
  else for (const line of formatShow(found)) ctx.out(line);
  return 0;
}

export async function replayCommand(ctx: DlqContext, filter: DeadLetterFilter, opts: { yes: boolean; keep: boolean; dryRun?: boolean }): Promise<number> {
  const bounds = await boundsOrEmpty(ctx);
  const { seqs, poison, missing } = await matchingSeqs(ctx, filter, bounds);
  const skippable = poison > 0 ? ` (${poison} poison, which would be skipped)` : '';
  if (opts.dryRun) {
    // Counts only: nothing is published or deleted.
    ctx.out(`${seqs.length} dead letters would be replayed${skippable}`);
    return missing > 0 ? 1 : 0;
  }
  if (seqs.length > REPLAY_CONFIRM_ABOVE && !opts.yes) {
    ctx.out(`${seqs.length} dead letters would be replayed${skippable}; pass --yes to replay them`);
    return 1;
  }
  const progress = progressBar('replayed', seqs.length, ctx);
  const outcome = await replayDeadLetters(
    ctx,
    seqs,
    { keep: opts.keep, publishTimeoutMs: ctx.publishTimeoutMs, now: ctx.now },
    {
      skipped: (seq, why, detail) => ctx.err(why === 'gone' ? `skipped ${seq}: ${detail}` : `skipped ${seq}: a poison message cannot be replayed (${detail})`),
      alreadyDeleted: (seq) => ctx.err(`replayed ${seq}, but it had already been deleted from the dead-letter stream`),
      progress: (done) => progress.update(done),
    },
  );
  progress.finish();
  if (outcome.failure) {
    ctx.err(`replay of ${outcome.failure.seq} to "${outcome.failure.subject}" failed: ${describe(outcome.failure.error)}`);
    ctx.out(`replayed ${outcome.replayed}, skipped ${outcome.skipped}`);
    return 1;
  }
  ctx.out(`replayed ${outcome.replayed}, skipped ${outcome.skipped}`);
  return missing > 0 || outcome.gone > 0 ? 1 : 0;
}

export async function purgeCommand(ctx: DlqContext, filter: DeadLetterFilter, opts: { yes: boolean }): Promise<number> {
  const bounds = await boundsOrEmpty(ctx);
  const explicit = filter.seqs.length > 0;
  const onMissing = (seq: number): void => ctx.err(`dead letter ${seq} not found`);
  if (!explicit && !opts.yes) {
    const count = await countDeadLetters(ctx, filter, bounds, onMissing);
    ctx.out(
      purgeScope(filter) === 'stream'
        ? `all ${countLine(count)} would be purged; pass --yes to purge them`
        : `${countLine(count)} would be purged; pass --yes to purge them`,
    );
    return 1;
  }
  let progress: ReturnType<typeof progressBar> | undefined;
  const outcome = await purgeDeadLetters(ctx, filter, bounds, {
    missing: onMissing,
    started: (total) => (progress = progressBar('purged', total, ctx)),
    progress: (done) => progress?.update(done),
    bodyNotDeleted: (name, err) => ctx.err(`could not delete stored body ${name}: ${describe(err)}`),
  });
  progress?.finish();
  ctx.out(`purged ${outcome.purged}`);
  const deleted = outcome.bodiesDeleted;
  if (deleted !== undefined) ctx.err(`deleted ${deleted} stored ${deleted === 1 ? 'body' : 'bodies'} (${PAYLOAD_BUCKET})`);
  return outcome.missing > 0 ? 1 : 0;
}

/** The sequences matching the filter (read headers-only), how many are poison, and how many explicit ones are missing. */
async function matchingSeqs(ctx: DlqContext, filter: DeadLetterFilter, bounds: StreamBounds): Promise<DeadLetterMatches> {
  return matchDeadLetters(ctx, filter, bounds, (seq) => ctx.err(`dead letter ${seq} not found`));
}

async function boundsOrEmpty(ctx: DlqContext): Promise<StreamBounds> {
  const bounds = await readBounds(ctx.jsm);
  if (bounds) return bounds;
  ctx.err(`no stream "${DEAD_LETTER_STREAM}" yet: nothing has been dead-lettered`);
  return NO_DEAD_LETTERS;
}

export function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'JetStream did not acknowledge in time';
    if (err.name === 'NoRespondersError') return 'no stream is listening on that subject';
  }
  return describeError(err);
}
