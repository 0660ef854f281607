/**
 * Confirmed JetStream writes for a busy process: publishes with PubAck, KV puts, double acks.
 *
 * nats.js answers each of these with its own request machinery: per request a `RequestOne` with
 * its own timer, an async-trace `RequestError` built up front and another built by `cancel()`
 * after the answer (two `Error`s with stack traces per confirmed write). A worker that does
 * several confirmed writes per invocation pays that on every one. The confirmer shares one
 * wildcard inbox subscription (`<inbox>.*`) and one sweep timer among all its writes, matches
 * answers by the last token of the reply subject, and builds an `Error` only when a write fails.
 *
 * Writes are handed to `nc.publish` at once. nats.js buffers them (protocol.ts `sendCommand`):
 * the first write into an empty buffer schedules a flush as a microtask; every write made before
 * that microtask runs joins the same socket write (and a buffer over 32 KiB is written inline).
 * So writes issued together (e.g. the continuations of the answers of one socket read) go out as
 * one write, without a flush per write.
 *
 * Disconnects: nothing is rejected at once. Writes still in nats.js's buffer are sent after the
 * reconnect and can be confirmed on the re-established inbox subscription; those whose answer was
 * lost with the old socket end in {@link ConfirmTimeoutError} (outcome unknown) at their deadline.
 * Closing the confirmer, or the connection closing, rejects every pending write with
 * {@link ConfirmerClosedError}.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { ConfirmerClosedError, ConfirmTimeoutError, JetStreamRejectedError, NoStreamError, type JetStreamApiErrorBody } from './confirmer-errors.js';
import { TokenRing } from './token-ring.js';
import { deferWrite } from './write-batch.js';

export * from './confirmer-errors.js';

/** What JetStream answers a stored (or deduplicated) publish with; the shape of nats.js's PubAck. */
export interface PubAck {
  readonly stream: string;
  readonly seq: number;
  /** true when the `Nats-Msg-Id` was seen within the stream's duplicate window: not stored again. */
  readonly duplicate: boolean;
  readonly domain?: string;
}

export interface ConfirmedPublishOptions {
  /** Sent as they are; `msgId` and `expectStream` are added to them (the object is modified). */
  readonly headers?: MsgHdrs;
  /** `Nats-Msg-Id`: JetStream stores the message once per id within the duplicate window. */
  readonly msgId?: string;
  /** `Nats-Expected-Stream`: JetStream refuses the write unless this stream captures the subject. */
  readonly expectStream?: string;
  /** `Nats-Expected-Last-Subject-Sequence`: refuse unless the subject's last message has this sequence (KV update). */
  readonly expectLastSubjectSequence?: number;
  /** Longest wait for the answer, ms; default the confirmer's `timeoutMs`. */
  readonly timeoutMs?: number;
  /** Send it with the writes asked for during this event-loop turn, as `batchWrites` sends every write (default: as `batchWrites` says). */
  readonly batch?: boolean;
  /**
   * Called right before the write is handed to the connection (not at all if the confirmer closed
   * first): writes made here leave in the same socket write, just ahead of this one.
   */
  readonly beforeSend?: () => void;
}

export interface ConfirmerOptions {
  /** Default deadline of a write, ms; default 5000 (nats.js's JetStream default). */
  readonly timeoutMs?: number;
  /** How often the sweep looks for writes past their deadline, ms; default 100. A write times out within this much after its deadline. */
  readonly sweepIntervalMs?: number;
  /**
   * Send the writes asked for during one event-loop turn together, from the check phase, so they
   * leave in one socket write instead of one per I/O callback that asked; costs one loop turn of
   * latency. Default false (each write leaves with nats.js's own microtask flush).
   */
  readonly batchWrites?: boolean;
}

/** Confirmed JetStream writes over one shared inbox; one per connection. */
export interface Confirmer {
  /**
   * Publishes to a stream subject and resolves with JetStream's PubAck: what `js.publish` does.
   * Rejects with {@link NoStreamError} (no stream captures the subject), {@link JetStreamRejectedError}
   * (JetStream's error answer, with its codes), {@link ConfirmTimeoutError}, {@link ConfirmerClosedError},
   * or what `nc.publish` throws (payload over max_payload, connection closed).
   */
  publish(subject: string, data: Uint8Array, opts?: ConfirmedPublishOptions): Promise<PubAck>;
  /**
   * A KV put: a publish to `$KV.<bucket>.<key>` as `@nats-io/kv` does it (default codecs, no API
   * prefix, mirrors not followed). Resolves with the entry's revision (stream sequence).
   * `previousSeq` makes it an update that fails unless the key's last revision is that one.
   */
  kvPut(bucket: string, key: string, data: Uint8Array, opts?: { previousSeq?: number; timeoutMs?: number }): Promise<number>;
  /**
   * What `msg.ackAck()` does: `+ACK` to the message's reply subject with a reply inbox, then waits
   * for the server's empty answer. Resolves true once confirmed; false, sending nothing, when the
   * message was already acked, naked or termed through nats.js or has no reply subject (as
   * nats.js does). Marks the message acked as the ack is sent (with batchWrites, when the turn's
   * writes leave), so later `ack()`/`nak()`/`working()` send nothing; until then `working()`
   * still extends its deadline.
   */
  ackAck(msg: JsMsg, opts?: { timeoutMs?: number }): Promise<boolean>;
  /** Writes waiting for their answer. */
  readonly pending: number;
  /** Rejects every pending write with {@link ConfirmerClosedError} and unsubscribes; later writes reject at once. Idempotent. */
  close(): void;
}

/** A write waiting for its answer. Plain object: nothing else (no timer, no Error) per write. */
interface Pending {
  /** Handed out in order; written in base 36 as its reply subject's last token. */
  readonly token: number;
  readonly kind: Kind;
  readonly subject: string;
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly resolve: (value: never) => void;
  readonly reject: (err: Error) => void;
}

/** What the answer is: a PubAck (publish, KV put) or the empty answer to a double ack. */
const Kind = { PubAck: 0, Ack: 1 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

const ACK = new TextEncoder().encode('+ACK');
const decoder = new TextDecoder();
const KV_KEY = /^[-/=.\w]+$/;
const KV_BUCKET = /^[-\w]+$/;
const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_SWEEP_MS = 100;

/** JsMsgImpl's fields the ack needs; `JsMsg` (a type) does not declare them. */
interface AckableMsg {
  readonly reply?: string;
  didAck?: boolean;
}

/** JetStream's answer to a publish, as JSON has it. */
export interface PubAckAnswer {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  domain?: string;
  error?: JetStreamApiErrorBody;
}

/**
 * A stored publish's answer as nats-server writes it (`{"stream":"s", "seq":1}`, then
 * `,"duplicate": true` for a repeat), read without JSON.parse: every async request and every
 * settlement waits for one. Any other text (an error, a domain, a field a newer server adds) is
 * left to JSON.parse.
 */
export const PLAIN_PUB_ACK = /^\{"stream": ?"([^"\\]+)", ?"seq": ?(\d{1,15})(, ?"duplicate": ?true)?\}$/;

/** JetStream's answer to a publish; `{}` when it is not JSON. */
export function readAnswer(text: string): PubAckAnswer {
  const plain = PLAIN_PUB_ACK.exec(text);
  if (plain !== null) return { stream: plain[1]!, seq: Number(plain[2]), duplicate: plain[3] !== undefined };
  try {
    return JSON.parse(text) as PubAckAnswer;
  } catch {
    return {};
  }
}

export function createConfirmer(nc: NatsConnection, opts: ConfirmerOptions = {}): Confirmer {
  const defaultTimeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const sweepIntervalMs = opts.sweepIntervalMs ?? DEFAULT_SWEEP_MS;
  const batchWrites = opts.batchWrites ?? false;
  const inbox = `${createInbox(inboxPrefixOf(nc))}.`;
  const pending = new TokenRing<Pending>();
  let nextToken = 0;
  let closed = false;
  let sweeper: ReturnType<typeof setInterval> | undefined;
  // Earliest deadline that may still be pending: a sweep before it has nothing to do.
  let earliest = Infinity;
  // An expiry is scheduled for after the next read of the sockets.
  let expiring = false;

  const settle = (err: Error | null, msg: Msg): void => {
    if (err !== null) return; // the subscription's own errors (permissions) leave writes to the sweep
    const tail = msg.subject.slice(inbox.length);
    const p = pending.get(parseInt(tail, 36));
    // Answered after its deadline or after close; or not a token this confirmer wrote (parseInt
    // reads "1a-x" as 1a: only the token's own text is its answer).
    if (p === undefined || p.token.toString(36) !== tail) return;
    pending.take(p.token);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      p.reject(new NoStreamError(p.subject));
      return;
    }
    if (p.kind === Kind.Ack) {
      (p.resolve as (v: boolean) => void)(true);
      return;
    }
    const answer = readAnswer(decoder.decode(msg.data));
    if (answer.error !== undefined) {
      p.reject(new JetStreamRejectedError(p.subject, answer.error));
    } else if (typeof answer.stream !== 'string' || answer.stream === '' || typeof answer.seq !== 'number') {
      p.reject(new JetStreamRejectedError(p.subject, { code: 0, description: 'invalid ack response' }));
    } else {
      const ack: PubAck = { stream: answer.stream, seq: answer.seq, duplicate: answer.duplicate === true };
      (p.resolve as (v: PubAck) => void)(answer.domain === undefined ? ack : { ...ack, domain: answer.domain });
    }
  };

  const sub: Subscription = nc.subscribe(`${inbox}*`, { callback: settle });

  const sweep = (): void => {
    if (pending.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
      earliest = Infinity;
      return;
    }
    const now = performance.now();
    if (now < earliest || expiring) return;
    // Timers run before the event loop reads its sockets: after a long turn, answers that came in
    // time may be waiting unread. The writes past their deadline expire after the next read
    // (`setImmediate` runs after the poll phase), if still unanswered then. Expired too early, a
    // confirmed callback hand-off would be left unacked, and its invocation run again.
    expiring = true;
    setImmediate(expire, now);
  };

  const expire = (now: number): void => {
    expiring = false;
    earliest = Infinity;
    pending.forEach((p) => {
      if (p.deadline <= now) {
        pending.take(p.token);
        p.reject(new ConfirmTimeoutError(p.subject, p.timeoutMs));
      } else if (p.deadline < earliest) {
        earliest = p.deadline;
      }
    });
  };

  const close = (cause?: unknown): void => {
    if (closed) return;
    closed = true;
    clearInterval(sweeper);
    sweeper = undefined;
    const left: Pending[] = [];
    pending.forEach((p) => left.push(p));
    pending.clear();
    for (const p of left) p.reject(new ConfirmerClosedError(p.subject, cause === undefined ? undefined : { cause }));
    try {
      if (!nc.isClosed()) sub.unsubscribe();
    } catch {
      // draining or closing: the subscription goes with the connection
    }
  };
  void nc.closed().then((err) => close(err ?? undefined));

  /** Sends one request whose answer comes to `<inbox><token>`; resolves with what `settle` gives. */
  // With batchWrites, the writes of one event-loop turn leave together (src/queue/write-batch.ts).
  const send = (write: () => void, batch: boolean): void => (batch ? deferWrite(write) : write());

  const request = <T>(
    kind: Kind,
    subject: string,
    data: Uint8Array,
    h: MsgHdrs | undefined,
    timeoutMs: number,
    batch = batchWrites,
    beforeSend?: () => void,
    ackOf?: AckableMsg,
  ): Promise<T> => {
    if (closed) return Promise.reject(new ConfirmerClosedError(subject));
    const token = nextToken++;
    return new Promise<T>((resolve, reject) => {
      const deadline = performance.now() + timeoutMs;
      pending.add({ token, kind, subject, deadline, timeoutMs, resolve, reject });
      if (deadline < earliest) earliest = deadline;
      if (sweeper === undefined) {
        sweeper = setInterval(sweep, sweepIntervalMs);
        sweeper.unref();
      }
      send(() => {
        // Closed while it waited its turn: close() has rejected it already.
        if (pending.get(token) === undefined) return;
        if (ackOf !== undefined) {
          // Acked meanwhile (a second ackAck, or through nats.js): nothing to send.
          if (ackOf.didAck === true) {
            pending.take(token);
            resolve(false as T);
            return;
          }
          ackOf.didAck = true;
        }
        try {
          beforeSend?.();
          const reply = inbox + token.toString(36);
          nc.publish(subject, data, h === undefined ? { reply } : { reply, headers: h });
        } catch (err) {
          // payload over max_payload, connection closed: nothing was sent.
          pending.take(token);
          reject(err);
        }
      }, batch);
    });
  };

  const publish = (subject: string, data: Uint8Array, o: ConfirmedPublishOptions = {}): Promise<PubAck> => {
    let h = o.headers;
    // As js.publish builds them (jsclient.ts _publish); without any, a plain PUB (js.publish sends
    // an empty header block, which JetStream treats the same).
    if (o.msgId !== undefined || o.expectStream !== undefined || o.expectLastSubjectSequence !== undefined) {
      h ??= natsHeaders();
      if (o.msgId !== undefined) h.set('Nats-Msg-Id', o.msgId);
      if (o.expectStream !== undefined) h.set('Nats-Expected-Stream', o.expectStream);
      if (o.expectLastSubjectSequence !== undefined) h.set('Nats-Expected-Last-Subject-Sequence', String(o.expectLastSubjectSequence));
    }
    return request<PubAck>(Kind.PubAck, subject, data, h, o.timeoutMs ?? defaultTimeoutMs, o.batch ?? batchWrites, o.beforeSend);
  };

  return {
    publish,
    kvPut(bucket, key, data, o = {}) {
      // @nats-io/kv validates the same way (kv.ts validateKey, validBucketRe).
      if (!KV_BUCKET.test(bucket)) return Promise.reject(new TypeError(`invalid KV bucket name: ${bucket}`));
      if (key.startsWith('.') || key.endsWith('.') || !KV_KEY.test(key)) return Promise.reject(new TypeError(`invalid KV key: ${key}`));
      // A reaction on the write's promise, not an async frame: every final record is one of these.
      return publish(`$KV.${bucket}.${key}`, data, { expectLastSubjectSequence: o.previousSeq, timeoutMs: o.timeoutMs }).then(sequenceOf);
    },
    ackAck(msg, o = {}) {
      const m = msg as unknown as AckableMsg;
      if (m.didAck === true || !m.reply) return Promise.resolve(false);
      // Marked acked when the ack leaves, not when it is asked for. A batched write waits for the
      // check phase, which one long I/O phase (thousands of long jobs ending at once) holds off
      // for seconds; until the ack leaves, the ack-extend sweep's `working()` must still reach
      // the server, or JetStream delivers the message again meanwhile.
      return request<boolean>(Kind.Ack, m.reply, ACK, undefined, o.timeoutMs ?? defaultTimeoutMs, batchWrites, undefined, m);
    },
    get pending() {
      return pending.size;
    },
    close: () => close(),
  };
}

/** The connection's `inboxPrefix` option (a permission-restricted user may only subscribe under it). */
function inboxPrefixOf(nc: NatsConnection): string | undefined {
  return (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
}

function sequenceOf(ack: PubAck): number {
  return ack.seq;
}
