import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import type { DeadLetterFilter } from './filters.js';
import { getDeadLetter, readBounds, selectDeadLetters, type DeadLetterStreamAccess, type StreamBounds } from './read.js';
import { replayHeaders, replaySubject } from './replay.js';
import { DEAD_LETTER_STREAM } from '../queue/topology.js';
import { EnvelopeHeader } from '../queue/envelope.js';

/** Server error codes for deleting a message that is not there: JSSequenceNotFound, or JSStreamMsgDeleteFailed saying "not found". */
const SEQUENCE_NOT_FOUND = 10043;
const MSG_DELETE_FAILED = 10057;

export const NO_DEAD_LETTERS: StreamBounds = { lastSeq: 0, messages: 0 };

/** The dead letters a filter selects: their sequences, how many are poison, how many explicit ones are missing. */
export interface DeadLetterMatches {
  readonly seqs: readonly number[];
  readonly poison: number;
  readonly missing: number;
  /** The stored bodies (claim checks, `Asyncfn-Body-Ref`) of the matching letters, by sequence: a purge deletes them too. */
  readonly refs: ReadonlyMap<number, string>;
}

/** The sequences matching the filter, read headers-only up to `bounds.lastSeq` (`onMissing` hears of explicit ones that do not exist). */
export async function matchDeadLetters(
  access: DeadLetterStreamAccess,
  filter: DeadLetterFilter,
  bounds: StreamBounds,
  onMissing?: (seq: number) => void,
): Promise<DeadLetterMatches> {
  const seqs: number[] = [];
  let poison = 0;
  let missing = 0;
  const missingSeq = (seq: number): void => {
    missing += 1;
    onMissing?.(seq);
  };
  const refs = new Map<number, string>();
  for await (const found of selectDeadLetters(access, filter, bounds, { headersOnly: true, onMissing: missingSeq })) {
    seqs.push(found.letter.seq);
    if (!found.letter.invocation) poison += 1;
    // Read from the header, so a poison letter's body is found too.
    const ref = found.headers?.get(EnvelopeHeader.bodyRef);
    if (ref) refs.set(found.letter.seq, ref);
  }
  return { seqs, poison, missing, refs };
}

/** The dead-letter stream's bounds now, or none when it does not exist yet. */
export async function boundsOrNone(jsm: JetStreamManager): Promise<StreamBounds> {
  return (await readBounds(jsm)) ?? NO_DEAD_LETTERS;
}

/** What a replay tells as it goes. */
export interface ReplayEvents {
  /** A dead letter was not replayed: deleted since it was listed, or poison (`detail` says why). */
  readonly skipped?: (seq: number, why: 'gone' | 'poison', detail: string) => void;
  /** Replayed, but someone else had deleted it from the dead-letter stream in between. */
  readonly alreadyDeleted?: (seq: number) => void;
  /** Dead letters processed so far. */
  readonly progress?: (done: number) => void;
}

export interface ReplayOptions {
  /** Keep the dead letters after replaying them (default: delete each after its PubAck). */
  readonly keep: boolean;
  /** How long to wait for each replay's PubAck; ms. */
  readonly publishTimeoutMs: number;
  /** Unix ms: the replay's new enqueue time. */
  readonly now: () => number;
}

export interface ReplayOutcome {
  readonly replayed: number;
  readonly skipped: number;
  /** Gone before or right after the replay (another replay or purge). */
  readonly gone: number;
  /** The publish that failed and stopped the replay, if one did. */
  readonly failure?: { readonly seq: number; readonly subject: string; readonly error: unknown };
}

/**
 * Publishes the original invocations of the dead letters `seqs` to their queues again (same call
 * id, see replayHeaders), one by one, each after the previous PubAck, and deletes each dead letter
 * after its PubAck unless `keep`: a failure in between leaves a duplicate, never a loss. The first
 * failed publish stops the replay (the rest would most likely fail the same way).
 */
export async function replayDeadLetters(access: DeadLetterStreamAccess, seqs: readonly number[], opts: ReplayOptions, events: ReplayEvents = {}): Promise<ReplayOutcome> {
  let replayed = 0;
  let skipped = 0;
  let gone = 0;
  for (const [i, seq] of seqs.entries()) {
    const found = await getDeadLetter(access.jsm, seq);
    if (!found) {
      gone += 1;
      skipped += 1;
      events.skipped?.(seq, 'gone', 'no longer in the dead-letter stream');
    } else if (!found.letter.invocation) {
      skipped += 1;
      events.skipped?.(seq, 'poison', found.letter.decodeError ?? 'not an envelope');
    } else {
      const subject = replaySubject(found.letter.queue, found.letter.reason);
      try {
        await access.js.publish(subject, found.data, { headers: replayHeaders(found.headers, opts.now()), timeout: opts.publishTimeoutMs });
      } catch (error) {
        return { replayed, skipped, gone, failure: { seq, subject, error } };
      }
      replayed += 1;
      if (!opts.keep && !(await deleteDeadLetter(access.jsm, seq))) {
        gone += 1;
        events.alreadyDeleted?.(seq);
      }
    }
    events.progress?.(i + 1);
  }
  return { replayed, skipped, gone };
}

/** Deletes one dead letter; false when it was already gone. */
export async function deleteDeadLetter(jsm: JetStreamManager, seq: number): Promise<boolean> {
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
