import { createHash, randomUUID } from 'node:crypto';
import { JetStreamApiCodes, type JetStreamManager } from '@nats-io/jetstream';
import { Objm, type ObjectInfo, type ObjectStore } from '@nats-io/obj';
import type { PayloadRef } from '../../actors/invocation.types.js';
import { infoOrUndefined, PAYLOAD_BUCKET, payloadStreamName } from './topology.js';

/*
 * Large payloads (claim check): bodies and results too large for one NATS message live in a
 * JetStream Object Store bucket (`@nats-io/obj`), and the message carries their name, size and
 * SHA-256 (hex; the store's own digest is the base64url SHA-256 of the same bytes).
 *
 * put and delete are the obj client's: it writes the chunks one PubAck at a time, purges them when
 * the source fails and rolls the meta up on a rewrite. get is not: the client's get drains its push
 * consumer into an unbounded ReadableStream queue, so a slow reader (a function reading its body
 * slowly) would hold the whole object in memory. get here reads the chunks the client wrote one at
 * a time, as they are asked for.
 */

/** What a message carries of a stored payload (the claim check). */
export type { PayloadRef };

/** Thrown by `put` when the source grows past `maxBytes` (the caller maps it to its own refusal). */
export class ObjectTooLargeError extends Error {
  override readonly name = 'ObjectTooLargeError';
  constructor(readonly maxBytes: number) {
    super(`payload exceeds ${maxBytes} bytes`);
  }
}

/** The stored bytes do not match their SHA-256 or size (a chunk went missing: the bucket's TTL). */
export class PayloadCorruptError extends Error {
  override readonly name = 'PayloadCorruptError';
}

export interface PayloadStore {
  /**
   * Streams `source` into a new object named `name` (default a fresh UUID), over any object of that
   * name; resolves once every chunk and the meta have their PubAck. On any failure (the source
   * errors, it passes `maxBytes`, JetStream refuses) the chunks written are purged, the source is
   * closed and the error rethrown: nothing is left.
   */
  put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts?: { name?: string; maxBytes?: number }): Promise<PayloadRef>;
  /** The object's bytes as a stream, read a chunk at a time, checked against its size and SHA-256 at the end; undefined when absent or deleted. */
  get(name: string): Promise<{ readonly size: number; readonly chunks: AsyncIterable<Uint8Array> } | undefined>;
  /** Deletes the object (its chunks purged, a deleted meta left as the Object Store does); false when there was none. */
  delete(name: string): Promise<boolean>;
}

/**
 * The store on an existing bucket that holds anything (the CLI's purge must not create one, and
 * need not look for references when it is empty); undefined otherwise.
 */
export async function openPayloadStoreIfUsed(jsm: JetStreamManager, bucket = PAYLOAD_BUCKET): Promise<PayloadStore | undefined> {
  // Stream info rather than Objm.open: its "not found" is a plain Error, this one has a code.
  const info = await infoOrUndefined(() => jsm.streams.info(payloadStreamName(bucket)), JetStreamApiCodes.StreamNotFound);
  return info && info.state.messages > 0 ? payloadStore(jsm, bucket) : undefined;
}

/** The store on a bucket that exists (ensurePayloadBucket in topology.ts creates it). */
export function payloadStore(jsm: JetStreamManager, bucket: string = PAYLOAD_BUCKET): PayloadStore {
  let opened: Promise<ObjectStore> | undefined;
  // Opened on first use (keeps this constructor synchronous), again after a failed open.
  const store = (): Promise<ObjectStore> =>
    (opened ??= new Objm(jsm.jetstream()).open(bucket, false).catch((err: unknown) => {
      opened = undefined;
      throw err;
    }));
  const liveInfo = async (name: string): Promise<ObjectInfo | undefined> => {
    const info = await (await store()).info(name);
    return info && !info.deleted ? info : undefined;
  };

  return {
    async put(source, opts = {}) {
      const name = opts.name ?? randomUUID();
      const body = hashedStream(source, opts.maxBytes ?? Number.POSITIVE_INFINITY);
      try {
        const info = await (await store()).put({ name }, body.stream);
        return { name, size: info.size, sha256: body.sha256() };
      } catch (err) {
        // The client stops reading on a failed publish without cancelling the stream: free the source (an HTTP request body).
        await body.close();
        throw err;
      }
    },

    async get(name) {
      const info = await liveInfo(name);
      return info && { size: info.size, chunks: readChunks(jsm, bucket, info) };
    },

    async delete(name) {
      if (!(await liveInfo(name))) return false;
      await (await store()).delete(name);
      return true;
    },
  };
}

/**
 * `source` as a pull-only ReadableStream (nothing is read ahead of the Object Store's reads), hashed
 * and counted as it passes; past `maxBytes` it errors with ObjectTooLargeError, which the client's
 * put rethrows after purging the chunks written.
 */
function hashedStream(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, maxBytes: number) {
  const it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  const hash = createHash('sha256');
  let size = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await it.next();
        if (next.done === true) return controller.close();
        size += next.value.byteLength;
        if (size > maxBytes) throw new ObjectTooLargeError(maxBytes);
        hash.update(next.value);
        controller.enqueue(next.value);
      },
      async cancel() {
        await it.return?.();
      },
    },
    { highWaterMark: 0 },
  );
  return {
    stream,
    sha256: () => hash.digest('hex'),
    async close(): Promise<void> {
      try {
        await it.return?.();
      } catch {
        // The put's error is the one to report, not the source's while it closes.
      }
    },
  };
}

/**
 * The chunks of `info`'s object, fetched one per read from the stream's leader (`next_by_subj`: the
 * first message on the chunk subject at or after a sequence; a direct get may be answered by a
 * replica not yet caught up), and checked against the meta's size and digest at the end. A missing
 * chunk ends it with PayloadCorruptError instead of waiting for a message that will not come.
 */
async function* readChunks(jsm: JetStreamManager, bucket: string, info: ObjectInfo): AsyncGenerator<Uint8Array> {
  const stream = payloadStreamName(bucket);
  const subject = `$O.${bucket}.C.${info.nuid}`;
  const hash = createHash('sha256');
  let seq = 0;
  let size = 0;
  for (let i = 0; i < info.chunks; i++) {
    const stored = await jsm.streams.getMessage(stream, { seq: seq + 1, next_by_subj: subject } as unknown as { seq: number });
    if (!stored || stored.subject !== subject) throw new PayloadCorruptError(`object "${info.name}" is missing chunk ${i + 1} of ${info.chunks}`);
    seq = stored.seq;
    size += stored.data.length;
    hash.update(stored.data);
    yield stored.data;
  }
  // The meta's digest is "SHA-256=" and padded base64url; Node's base64 decoder takes either alphabet.
  const digest = Buffer.from(info.digest.replace(/^SHA-256=/, ''), 'base64');
  if (size !== info.size || !digest.equals(hash.digest())) throw new PayloadCorruptError(`object "${info.name}" does not match its size or SHA-256`);
}
