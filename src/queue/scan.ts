import type { JetStreamClient, JsMsg, OrderedConsumerOptions } from '@nats-io/jetstream';

/** Messages fetched per pull while scanning: the most the client buffers at once. */
export const SCAN_BATCH = 256;
/**
 * How long one pull may wait for messages the consumer reported pending; ms. It only runs out when
 * they were deleted (expired, purged) while we read, and then the scan ends.
 */
export const SCAN_EXPIRES_MS = 2_000;

/** Where a scan starts and what it reads. */
export interface ScanOptions {
  readonly stream: string;
  /** Ordered consumer options: subject filters, deliver policy or start time, headers only. */
  readonly consumer: Partial<OrderedConsumerOptions>;
  /** Stop after this stream sequence (a scan bounded by what was stored when it started). */
  readonly lastSeq?: number;
}

/**
 * Reads a stream once, oldest first, through an ordered pull consumer that is deleted when the
 * scan ends (finished, broken off by the caller, or failed).
 *
 * Bounded: the server counts what the new consumer has to deliver, and each message says how many
 * remain, so the scan stops at what was pending when it started (plus what arrives before the last
 * message is read, never beyond `lastSeq`). The client holds at most {@link SCAN_BATCH} messages.
 */
export async function* scanStream(js: JetStreamClient, opts: ScanOptions): AsyncGenerator<JsMsg> {
  const consumer = await js.consumers.get(opts.stream, opts.consumer);
  const lastSeq = opts.lastSeq ?? Number.MAX_SAFE_INTEGER;
  try {
    let remaining = (await consumer.info(true)).num_pending;
    while (remaining > 0) {
      const batch = await consumer.fetch({ max_messages: Math.min(SCAN_BATCH, remaining), expires: SCAN_EXPIRES_MS });
      let received = 0;
      try {
        for await (const m of batch) {
          received += 1;
          if (m.seq > lastSeq) return;
          yield m;
          remaining = m.seq === lastSeq ? 0 : m.info.pending;
          if (remaining === 0) break;
        }
      } finally {
        batch.stop();
      }
      if (received === 0) return;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}
