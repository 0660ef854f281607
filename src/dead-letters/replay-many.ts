import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import type { DeadLetterFilter } from './filters.js';
import { getDeadLetter, readBounds, selectDeadLetters, type DeadLetterStreamAccess, type StoredDeadLetter, type StreamBounds } from './read.js';
import { queueSubjectOf, replayHeaders, replaySubject } from './replay.js';
import { DEAD_LETTER_STREAM, streamHasLanes } from '../queue/topology.js';
import { EnvelopeHeader } from '../queue/envelope.js';

/**
 * Server error codes for deleting a message that is not there: JSSequenceNotFound, or
 * JSStreamMsgDeleteFailed saying so (nats-server 2.9: "no message found"; elsewhere "... not found").
 */
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
  /** A dead letter was not replayed: deleted or replayed by someone else since it was listed, or poison (`detail` says why). */
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
  /** Gone before or right after the replay, or replayed meanwhile (another replay or purge). */
  readonly gone: number;
  /** The publish that failed and stopped the replay, if one did. */
  readonly failure?: { readonly seq: number; readonly subject: string; readonly error: unknown };
}

/**
 * Publishes the original invocations of the dead letters `seqs` to their queues again (same call
 * id, see replayHeaders; on their lanes, see replaySubject, so their limits hold), one by one, each after the previous PubAck, and deletes each dead letter
 * after its PubAck unless `keep`: a failure in between leaves the dead letter, never a loss, and
 * a repeat within the queue's duplicate window publishes nothing twice (see replayMsgId). The
 * first failed publish stops the replay (the rest would most likely fail the same way).
 */
export async function replayDeadLetters(access: DeadLetterStreamAccess, seqs: readonly number[], opts: ReplayOptions, events: ReplayEvents = {}): Promise<ReplayOutcome> {
  const lanesOf = queueLanes(access.jsm);
  let replayed = 0;
  let skipped = 0;
  let gone = 0;
  for (const [i, seq] of seqs.entries()) {
    const found = await getDeadLetter(access.jsm, seq);
    if (!found) {
      gone += 1;
      skipped += 1;
      events.skipped?.(seq, 'gone', 'no longer in the dead-letter stream');
    } else {
      const step = await replayDeadLetter(access, found, opts, lanesOf);
      if (step.outcome === 'failed') return { replayed, skipped, gone, failure: { seq, subject: step.subject, error: step.error } };
      if (step.outcome === 'poison') {
        skipped += 1;
        events.skipped?.(seq, 'poison', step.detail);
      } else if (step.outcome === 'duplicate') {
        gone += 1;
        skipped += 1;
        events.skipped?.(seq, 'gone', 'replayed meanwhile by another replay');
      } else {
        replayed += 1;
        if (!opts.keep && !step.deleted) {
          gone += 1;
          events.alreadyDeleted?.(seq);
        }
      }
    }
    events.progress?.(i + 1);
  }
  return { replayed, skipped, gone };
}

/** How the replay of one dead letter ended. */
export type ReplayStep =
  | { readonly outcome: 'replayed'; readonly subject: string; /** False when it was kept, or someone else had deleted it already. */ readonly deleted: boolean }
  /** Another replay of the same dead letter had published it (the stream dropped this copy); deleted unless kept. */
  | { readonly outcome: 'duplicate'; readonly subject: string }
  | { readonly outcome: 'poison'; readonly detail: string }
  | { readonly outcome: 'failed'; readonly subject: string; readonly error: unknown };

/**
 * Replays one dead letter read from the stream: publishes its invocation (with replayMsgId unless
 * `keep`) and, after the PubAck, deletes it unless `keep`. Two replays that read the same letter
 * before either deleted it (two operators, a client repeating a slow request) publish one copy:
 * the stream drops the second as a duplicate, and the lagging delete finds it gone.
 */
export async function replayDeadLetter(
  access: DeadLetterStreamAccess,
  found: StoredDeadLetter,
  opts: ReplayOptions,
  lanesOf: QueueLanes = queueLanes(access.jsm),
): Promise<ReplayStep> {
  const { letter } = found;
  if (!letter.invocation) return { outcome: 'poison', detail: letter.decodeError ?? 'not an envelope' };
  let subject = replaySubject(letter, false);
  let duplicate: boolean;
  try {
    if (letter.reason !== 'callbackFailed') subject = replaySubject(letter, await lanesOf(queueSubjectOf(letter.queue)));
    const headers = replayHeaders(found.headers, opts.now());
    // A kept letter may be replayed again on purpose: only a replay that deletes is deduplicated.
    if (!opts.keep) headers.set(EnvelopeHeader.msgId, replayMsgId(found));
    duplicate = (await access.js.publish(subject, found.data, { headers, timeout: opts.publishTimeoutMs })).duplicate;
  } catch (error) {
    return { outcome: 'failed', subject, error };
  }
  const deleted = !opts.keep && (await deleteDeadLetter(access.jsm, letter.seq));
  return duplicate ? { outcome: 'duplicate', subject } : { outcome: 'replayed', subject, deleted };
}

/** Whether a queue's stream takes its lane subjects (src/queue/lanes.ts); by the queue's plain subject. */
export type QueueLanes = (queue: string) => Promise<boolean>;

/**
 * QueueLanes asking the server once per queue (a replay's stream info per queue, never per letter).
 * A queue without a stream has no lanes: the replay's publish then fails and says so.
 */
export function queueLanes(jsm: JetStreamManager): QueueLanes {
  const known = new Map<string, Promise<boolean>>();
  return (queue) => {
    let lanes = known.get(queue);
    if (!lanes) {
      lanes = jsm.streams.info(queue).then(
        (info) => streamHasLanes(info, { subject: queue }),
        (err: unknown) => {
          if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
          known.delete(queue);
          throw err;
        },
      );
      known.set(queue, lanes);
    }
    return lanes;
  };
}

/**
 * The `Nats-Msg-Id` of a dead letter's replay: its sequence in the dead-letter stream, and the time
 * the stream stored it (so a dead-letter stream deleted and made again, whose sequences start over,
 * never reuses an id). The queue's stream drops a second publish of it within its duplicate window
 * (`idempotency_window`, 1h by default; the callback stream's is JetStream's 2 minutes), far longer
 * than two replays of one letter can lie apart: each deletes it right after its PubAck.
 */
export function replayMsgId(found: Pick<StoredDeadLetter, 'storedAtMs'> & { readonly letter: Pick<StoredDeadLetter['letter'], 'seq'> }): string {
  return `asyncfn-replay-${found.letter.seq}-${found.storedAtMs}`;
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
  return err.code === MSG_DELETE_FAILED && /not found|no message found/i.test(err.message);
}
