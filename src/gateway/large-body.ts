import type { Readable } from 'node:stream';
import { errorCodes, type FastifyInstance } from 'fastify';
import { BodyTooLargeError, LargeBodyTooLargeError } from '../errors.js';

/**
 * The async route's body parser. A body up to `max_body_size` is read whole, as fastify's own
 * buffer parser does (the same steps, so the usual request costs what it did). A larger one, up to
 * `max_large_body_size`, is not read here: the handler gets a {@link LargeBody} and streams it into
 * the payload bucket (claim check). That is decided from Content-Length, or for a chunked request
 * when it grows past `max_body_size` (the part read so far is handed over with the rest).
 */

/** A body too large for a message, still to be read: the bytes already read, then the rest of the request. */
export class LargeBody {
  constructor(
    private readonly head: readonly Buffer[],
    private readonly rest: Readable,
    /** The Content-Length, when the request gave one. */
    readonly declaredBytes: number | undefined,
  ) {}

  /** The body's bytes in order, read as they are consumed (the socket is paused in between). */
  async *chunks(): AsyncGenerator<Uint8Array> {
    yield* this.head;
    for await (const chunk of this.rest) yield chunk as Buffer;
  }
}

export interface BodyLimits {
  /** Largest body read whole and carried in the message, bytes (`max_body_size`). */
  readonly maxBodyBytes: number;
  /** Largest body at all, bytes (`max_large_body_size`); at or below maxBodyBytes, large bodies are off. */
  readonly maxLargeBodyBytes: number;
}

/** Installs the parser for every content type of `app` (the async route's plugin scope). */
export function installAsyncBodyParser(app: FastifyInstance, limits: BodyLimits): void {
  const large = limits.maxLargeBodyBytes > limits.maxBodyBytes;
  app.removeAllContentTypeParsers();
  // Bodies stay raw bytes whatever their content type: the function, not the gateway, parses them.
  app.addContentTypeParser('*', (request, payload, done) => {
    const header = request.headers['content-length'];
    const contentLength = header === undefined ? Number.NaN : Number(header);
    if (contentLength > limits.maxBodyBytes) {
      if (!large) return done(new BodyTooLargeError(limits.maxBodyBytes), undefined);
      if (contentLength > limits.maxLargeBodyBytes) return done(new LargeBodyTooLargeError(limits.maxLargeBodyBytes), undefined);
      return done(null, new LargeBody([], payload, contentLength));
    }
    let received = 0;
    const chunks: Buffer[] = [];
    const stop = (): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      chunks.push(chunk);
      if (received <= limits.maxBodyBytes) return;
      stop();
      if (!large) return done(new BodyTooLargeError(limits.maxBodyBytes), undefined);
      // A chunked body grew past max_body_size: hand over what was read, and the rest unread.
      payload.pause();
      done(null, new LargeBody(chunks, payload, undefined));
    };
    const onEnd = (err?: Error & { statusCode?: number }): void => {
      stop();
      if (err) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        return done(err, undefined);
      }
      if (!Number.isNaN(contentLength) && received !== contentLength) {
        return done(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH(), undefined);
      }
      // A copy, never a view over the socket's shared read buffer (as fastify's parser does).
      done(null, Buffer.concat(chunks, received));
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  });
}
