import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import type { DeadLetter } from '../../queue/dead-letter.js';
import { filterSubject, hasCriteria, isQueueOnly, type DeadLetterFilter } from './filters.js';
import { countLine, formatShow, formatTable, listJson, progressReporter, showJson } from './format.js';
import { getDeadLetter, readBounds, selectDeadLetters, type DeadLetterStreamAccess, type StreamBounds } from './read.js';
import { replayHeaders, replaySubject } from './replay.js';
import { DEAD_LETTER_STREAM, PAYLOAD_BUCKET } from '../../queue/topology.js';
import { EnvelopeHeader } from '../../queue/envelope.js';
import { openPayloadStoreIfUsed, type PayloadStore } from '../../queue/payload-store.js';
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
}

/** More matches than this need `--yes` to replay. */
export const REPLAY_CONFIRM_ABOVE = 10;

const NO_DEAD_LETTERS: StreamBounds = { lastSeq: 0, messages: 0 };
/** Server error codes for deleting a message that is not there: JSSequenceNotFound, or JSStreamMsgDeleteFailed saying "not found". */
const SEQUENCE_NOT_FOUND = 10043;
const MSG_DELETE_FAILED = 10057;

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

export async function replayCommand(ctx: DlqContext, filter: DeadLetterFilter, opts: { yes: boolean; keep: boolean }): Promise<number> {
  const bounds = await boundsOrEmpty(ctx);
  const { seqs, poison, missing } = await matchingSeqs(ctx, filter, bounds);
  if (seqs.length > REPLAY_CONFIRM_ABOVE && !opts.yes) {
    const skipped = poison > 0 ? ` (${poison} poison, which would be skipped)` : '';
    ctx.out(`${seqs.length} dead letters would be replayed${skipped}; pass --yes to replay them`);
    return 1;
  }
  const progress = progressReporter('replayed', seqs.length, ctx.err);
  let replayed = 0;
  let skipped = 0;
  let gone = 0;
  for (const [i, seq] of seqs.entries()) {
    const found = await getDeadLetter(ctx.jsm, seq);
    if (!found) {
      // Deleted since we listed it (another replay or purge): nothing to do.
      gone += 1;
      skipped += 1;
      ctx.err(`skipped ${seq}: no longer in the dead-letter stream`);
    } else if (!found.letter.invocation) {
      skipped += 1;
      ctx.err(`skipped ${seq}: a poison message cannot be replayed (${found.letter.decodeError ?? 'not an envelope'})`);
    } else {
      const subject = replaySubject(found.letter.queue, found.letter.reason);
      try {
        await ctx.js.publish(subject, found.data, { headers: replayHeaders(found.headers, ctx.now()), timeout: ctx.publishTimeoutMs });
      } catch (err) {
        ctx.err(`replay of ${seq} to "${subject}" failed: ${describe(err)}`);
        ctx.out(`replayed ${replayed}, skipped ${skipped}`);
        return 1;
      }
      replayed += 1;
      // Deleted only after the PubAck: a failure in between leaves a duplicate, never a loss.
      if (!opts.keep && !(await deleteIfPresent(ctx.jsm, seq))) {
        gone += 1;
        ctx.err(`replayed ${seq}, but it had already been deleted from the dead-letter stream`);
      }
    }
    progress(i + 1);
  }
  ctx.out(`replayed ${replayed}, skipped ${skipped}`);
  return missing > 0 || gone > 0 ? 1 : 0;
}

export async function purgeCommand(ctx: DlqContext, filter: DeadLetterFilter, opts: { yes: boolean }): Promise<number> {
  const bounds = await boundsOrEmpty(ctx);
  const explicit = filter.seqs.length > 0;
  if (!explicit && !hasCriteria(filter)) {
    if (!opts.yes) {
      ctx.out(`all ${countLine(bounds.messages)} would be purged; pass --yes to purge them`);
      return 1;
    }
    const bodies = await storedBodies(ctx, filter, bounds);
    // Bounded by the last sequence at start: dead letters arriving meanwhile are kept.
    const purged = bounds.messages === 0 ? 0 : (await ctx.jsm.streams.purge(DEAD_LETTER_STREAM, { seq: bounds.lastSeq + 1 })).purged;
    ctx.out(`purged ${purged}`);
    await deleteBodies(ctx, bodies, [...bodies.refs.values()]);
    return 0;
  }
  if (isQueueOnly(filter) && opts.yes) {
    const bodies = await storedBodies(ctx, filter, bounds);
    const purged = bounds.messages === 0 ? 0 : (await ctx.jsm.streams.purge(DEAD_LETTER_STREAM, { filter: filterSubject(filter), seq: bounds.lastSeq + 1 })).purged;
    ctx.out(`purged ${purged}`);
    await deleteBodies(ctx, bodies, [...bodies.refs.values()]);
    return 0;
  }
  const payloads = await openPayloadStoreIfUsed(ctx.jsm);
  const { seqs, missing, refs } = await matchingSeqs(ctx, filter, bounds);
  if (!explicit && !opts.yes) {
    ctx.out(`${countLine(seqs.length)} would be purged; pass --yes to purge them`);
    return 1;
  }
  const progress = progressReporter('purged', seqs.length, ctx.err);
  let purged = 0;
  const names: string[] = [];
  for (const [i, seq] of seqs.entries()) {
    if (await deleteIfPresent(ctx.jsm, seq)) {
      purged += 1;
      const name = refs.get(seq);
      if (name !== undefined) names.push(name);
    }
    progress(i + 1);
  }
  ctx.out(`purged ${purged}`);
  await deleteBodies(ctx, { payloads }, names);
  return missing > 0 ? 1 : 0;
}

/** The stored bodies (claim checks) of the dead letters a purge removes: by sequence, their object names. */
async function storedBodies(ctx: DlqContext, filter: DeadLetterFilter, bounds: StreamBounds): Promise<{ payloads: PayloadStore | undefined; refs: Map<number, string> }> {
  const payloads = bounds.messages === 0 ? undefined : await openPayloadStoreIfUsed(ctx.jsm);
  // Only a bucket that holds anything is worth a scan of the letters' headers.
  return { payloads, refs: payloads ? (await matchingSeqs(ctx, filter, bounds)).refs : new Map<number, string>() };
}

/** A dead letter keeps its invocation's stored body until it is purged: then the body goes too. */
async function deleteBodies(ctx: DlqContext, bodies: { payloads: PayloadStore | undefined }, names: readonly string[]): Promise<void> {
  if (!bodies.payloads || names.length === 0) return;
  let deleted = 0;
  for (const name of names) {
    try {
      if (await bodies.payloads.delete(name)) deleted += 1;
    } catch (err) {
      ctx.err(`could not delete stored body ${name}: ${describe(err)}`);
    }
  }
  ctx.err(`deleted ${deleted} stored ${deleted === 1 ? 'body' : 'bodies'} (${PAYLOAD_BUCKET})`);
}

/** The sequences matching the filter (read headers-only), how many are poison, and how many explicit ones are missing. */
async function matchingSeqs(
  ctx: DlqContext,
  filter: DeadLetterFilter,
  bounds: StreamBounds,
): Promise<{ seqs: number[]; poison: number; missing: number; refs: Map<number, string> }> {
  const seqs: number[] = [];
  const refs = new Map<number, string>();
  let poison = 0;
  let missing = 0;
  const onMissing = (seq: number): void => {
    missing += 1;
    ctx.err(`dead letter ${seq} not found`);
  };
  for await (const found of selectDeadLetters(ctx, filter, bounds, { headersOnly: true, onMissing })) {
    seqs.push(found.letter.seq);
    if (!found.letter.invocation) poison += 1;
    // Read from the header, so a poison letter's body is found too.
    const ref = found.headers?.get(EnvelopeHeader.bodyRef);
    if (ref) refs.set(found.letter.seq, ref);
  }
  return { seqs, poison, missing, refs };
}

async function boundsOrEmpty(ctx: DlqContext): Promise<StreamBounds> {
  const bounds = await readBounds(ctx.jsm);
  if (bounds) return bounds;
  ctx.err(`no stream "${DEAD_LETTER_STREAM}" yet: nothing has been dead-lettered`);
  return NO_DEAD_LETTERS;
}

/** Deletes one dead letter; false when it was already gone. */
async function deleteIfPresent(jsm: JetStreamManager, seq: number): Promise<boolean> {
  try {
    // No erase: overwriting the stored bytes is slow and the message is unreachable either way.
    return await jsm.streams.deleteMessage(DEAD_LETTER_STREAM, seq, false);
  } catch (err) {
    if (err instanceof JetStreamApiError && isNotFound(err)) return false;
    throw err;
  }
}

function isNotFound(err: JetStreamApiError): boolean {
  if (err.code === SEQUENCE_NOT_FOUND || err.code === JetStreamApiCodes.NoMessageFound) return true;
  return err.code === MSG_DELETE_FAILED && /not found/i.test(err.message);
}

export function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'JetStream did not acknowledge in time';
    if (err.name === 'NoRespondersError') return 'no stream is listening on that subject';
  }
  return describeError(err);
}
