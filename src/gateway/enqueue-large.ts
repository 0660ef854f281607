/**
 * Enqueueing a body too large for a message (claim check): the body is streamed into the payload
 * bucket first, then the invocation is enqueued with the object's reference instead of the body
 * (enqueue.ts), so the 202 still means durable: the object is complete and the message has its
 * PubAck. Whatever is refused on the way leaves no object behind.
 */
import { describeError, FunctionNotFoundError, LargeBodyTooLargeError } from '../errors.js';
import { ObjectTooLargeError, type PayloadStore } from '../queue/payload-store.js';
import { QueueUnavailableError } from '../queue/errors.js';
import { enqueue, type EnqueuePorts, type EnqueueRequest, type EnqueueResult } from './enqueue.js';
import type { LargeBody } from './large-body.js';

export interface LargeEnqueuePorts extends EnqueuePorts {
  readonly payloads: Pick<PayloadStore, 'put' | 'delete'>;
  /** Largest body, bytes (`max_large_body_size`). */
  readonly maxLargeBodyBytes: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Stores `body`, then enqueues; resolves undefined when the client went away during the upload
 * (nobody to answer; the partial object is gone).
 */
export async function enqueueLarge(ports: LargeEnqueuePorts, req: EnqueueRequest, body: LargeBody, clientGone: () => boolean): Promise<EnqueueResult | undefined> {
  // Refused before a byte of the body is read: an unknown function must not cost an upload.
  if (!(await ports.resolver.resolve(req.ref))) return { outcome: 'refused', error: new FunctionNotFoundError(req.rawName) };
  // Started here, as the upload begins; enqueue, which resolves again, does not count it twice.
  ports.started?.(req.ref.name);
  let bodyRef;
  try {
    bodyRef = await ports.payloads.put(body.chunks(), { maxBytes: ports.maxLargeBodyBytes });
  } catch (err) {
    if (err instanceof ObjectTooLargeError) return { outcome: 'refused', error: new LargeBodyTooLargeError(ports.maxLargeBodyBytes), started: true };
    if (clientGone()) return undefined;
    return { outcome: 'refused', error: new QueueUnavailableError(`could not store the body: ${describeError(err)}`, { cause: err }), started: true };
  }
  let result: EnqueueResult;
  try {
    result = await enqueue({ ...ports, started: undefined }, { ...req, body: EMPTY, bodyRef });
  } catch (err) {
    drop(ports, bodyRef.name);
    throw err;
  }
  // A publish that timed out may have been stored after all: its object stays (records_ttl removes an orphan).
  const maybeStored = result.outcome === 'refused' && result.error instanceof QueueUnavailableError && result.error.outcomeUnknown;
  // A duplicate's message is the first request's, with its own object.
  if (result.outcome !== 'accepted' && !maybeStored) drop(ports, bodyRef.name);
  return result.outcome === 'refused' ? { ...result, started: true } : result;
}

function drop(ports: LargeEnqueuePorts, name: string): void {
  ports.payloads.delete(name).catch((err: unknown) => ports.logger.debug({ err, object: name }, 'could not delete the stored body of a refused invocation'));
}
