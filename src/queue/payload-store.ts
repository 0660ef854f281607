import { createHash, randomUUID } from 'node:crypto';
import { JetStreamApiCodes, type JetStreamClient, type JetStreamManager, type PubAck } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import type { PayloadRef } from '../../actors/invocation.types.js';
import { infoOrUndefined, PAYLOAD_BUCKET, payloadStreamName } from './topology.js';

/*
 * Large payloads (claim check): bodies and results too large for one NATS message live in a
 * JetStream Object Store bucket, and the message carries their name, size and SHA-256.
 *
 * The layout is the Object Store's (NATS ADR-20), so `nats object ls asyncfn_payloads` reads it:
 * stream `OBJ_<bucket>`, chunks on `$O.<bucket>.C.<nuid>`, one JSON meta per object on
 * `$O.<bucket>.M.<base64url name>` rolled up on each write. It is written here on the JetStream
 * client because `@nats-io/obj` is not among asyncfn's dependencies; only put, streamed get and
 * delete are needed, each bounded in memory: a put holds at most {@link PUT_WINDOW} chunks in
 * flight, a get one chunk at a time.
 */

/** Bytes per chunk message (the Object Store's default). */
export const CHUNK_BYTES = 128 * 1024;
/** Chunk publishes awaiting their PubAck at once during a put. */
const PUT_WINDOW = 4;

const chunkSubject = (bucket: string, nuid: string): string => `$O.${bucket}.C.${nuid}`;
const metaSubject = (bucket: string, name: string): string => `$O.${bucket}.M.${Buffer.from(name).toString('base64url')}${padding(name)}`;
/** ADR-20 names meta subjects with padded base64url (Go's base64.URLEncoding). */
function padding(name: string): string {
  const rest = Buffer.byteLength(name) % 3;
  return rest === 0 ? '' : '='.repeat(3 - rest);
}

/** What a message carries of a stored payload (the claim check). */
export type { PayloadRef };

/** The ADR-20 meta record (the fields asyncfn writes and reads). */
interface ObjectMeta {
  name: string;
  bucket: string;
  nuid: string;
  size: number;
  chunks: number;
  mtime: string;
  digest: string;
  deleted?: boolean;
  options?: { max_chunk_size: number };
}

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
   * Streams `source` into a new object named `name` (default a fresh UUID); resolves once every
   * chunk and the meta have their PubAck. On any failure (the source errors, it passes `maxBytes`,
   * JetStream refuses) the chunks written are purged and the error rethrown: nothing is left.
   */
  put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts?: { name?: string; maxBytes?: number }): Promise<PayloadRef>;
  /** The object's bytes as a stream, read a chunk at a time, checked against its size and SHA-256 at the end; undefined when absent or deleted. */
  get(name: string): Promise<{ readonly size: number; readonly chunks: AsyncIterable<Uint8Array> } | undefined>;
  /** Deletes the object (its chunks purged, a deleted meta left as ADR-20 does); false when there was none. */
  delete(name: string): Promise<boolean>;
}

/**
 * The store on an existing bucket that holds anything (the CLI's purge must not create one, and
 * need not look for references when it is empty); undefined otherwise.
 */
export async function openPayloadStoreIfUsed(jsm: JetStreamManager, bucket = PAYLOAD_BUCKET): Promise<PayloadStore | undefined> {
  const info = await infoOrUndefined(() => jsm.streams.info(payloadStreamName(bucket)), JetStreamApiCodes.StreamNotFound);
  return info && info.state.messages > 0 ? payloadStore(jsm, bucket) : undefined;
}

/** The store on a bucket that exists (ensurePayloadBucket in topology.ts creates it). */
export function payloadStore(jsm: JetStreamManager, bucket: string = PAYLOAD_BUCKET): PayloadStore {
  const js: JetStreamClient = jsm.jetstream();
  const stream = payloadStreamName(bucket);

  const readMeta = async (name: string): Promise<ObjectMeta | undefined> => {
    const stored = await jsm.streams.getMessage(stream, { last_by_subj: metaSubject(bucket, name) });
    if (!stored) return undefined;
    const meta = stored.json<ObjectMeta>();
    return meta.deleted ? undefined : meta;
  };
  const writeMeta = async (meta: ObjectMeta): Promise<void> => {
    const h = natsHeaders();
    // Only the newest meta of an object is kept.
    h.set('Nats-Rollup', 'sub');
    await js.publish(metaSubject(bucket, meta.name), JSON.stringify(meta), { headers: h });
  };
  const purgeChunks = (nuid: string) => jsm.streams.purge(stream, { filter: chunkSubject(bucket, nuid) });

  return {
    async put(source, opts = {}) {
      const name = opts.name ?? randomUUID();
      const maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
      // Writing over an object (a result written again on a redelivery) purges the old one's chunks after.
      const previous = opts.name === undefined ? undefined : await readMeta(name);
      const nuid = randomUUID().replaceAll('-', '');
      const subject = chunkSubject(bucket, nuid);
      const hash = createHash('sha256');
      const inFlight: Promise<PubAck>[] = [];
      let size = 0;
      let chunks = 0;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const send = async (chunk: Uint8Array): Promise<void> => {
        chunks += 1;
        inFlight.push(js.publish(subject, chunk));
        // Backpressure: the source is not read further while the window is full.
        if (inFlight.length >= PUT_WINDOW) await inFlight.shift();
      };
      try {
        for await (const piece of source) {
          size += piece.length;
          if (size > maxBytes) throw new ObjectTooLargeError(maxBytes);
          hash.update(piece);
          pending.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
          pendingBytes += piece.length;
          while (pendingBytes >= CHUNK_BYTES) {
            const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
            await send(all.subarray(0, CHUNK_BYTES));
            const rest = all.subarray(CHUNK_BYTES);
            pending = rest.length > 0 ? [rest] : [];
            pendingBytes = rest.length;
          }
        }
        if (pendingBytes > 0) await send(pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
        await Promise.all(inFlight.splice(0));
        const sha256 = hash.digest('hex');
        await writeMeta({
          name,
          bucket,
          nuid,
          size,
          chunks,
          mtime: new Date().toISOString(),
          digest: `SHA-256=${Buffer.from(sha256, 'hex').toString('base64url')}=`,
          options: { max_chunk_size: CHUNK_BYTES },
        });
        if (previous) await purgeChunks(previous.nuid).catch(() => undefined);
        return { name, size, sha256 };
      } catch (err) {
        await Promise.allSettled(inFlight);
        await purgeChunks(nuid).catch(() => undefined);
        throw err;
      }
    },

    async get(name) {
      const meta = await readMeta(name);
      if (!meta) return undefined;
      const subject = chunkSubject(bucket, meta.nuid);
      async function* chunks(): AsyncGenerator<Uint8Array> {
        const hash = createHash('sha256');
        let seq = 0;
        let size = 0;
        for (let i = 0; i < meta!.chunks; i++) {
          // next_by_subj: the first chunk of this object at or after seq, from the stream's leader
          // (a direct get may be answered by a replica that has not caught up yet).
          const stored = await jsm.streams.getMessage(stream, { seq: seq + 1, next_by_subj: subject } as unknown as { seq: number });
          if (!stored || stored.subject !== subject) throw new PayloadCorruptError(`object "${name}" is missing chunk ${i + 1} of ${meta!.chunks}`);
          seq = stored.seq;
          size += stored.data.length;
          hash.update(stored.data);
          yield stored.data;
        }
        const digest = `SHA-256=${hash.digest('base64url')}=`;
        if (size !== meta!.size || digest !== meta!.digest) throw new PayloadCorruptError(`object "${name}" does not match its size or SHA-256`);
      }
      return { size: meta.size, chunks: chunks() };
    },

    async delete(name) {
      const meta = await readMeta(name);
      if (!meta) return false;
      await purgeChunks(meta.nuid);
      await writeMeta({ ...meta, size: 0, chunks: 0, digest: '', deleted: true, mtime: new Date().toISOString() });
      return true;
    },
  };
}
