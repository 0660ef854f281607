import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream';

/**
 * Whether a lane has invocations JetStream would deliver now, from its consumer's state. A stream
 * subject's count cannot tell: it also counts the invocations that run (on any worker) and the
 * retries waiting out their back-off, which stay unacked in the consumer. Only `num_pending`
 * (never delivered) can be delivered, and only below the consumer's `max_ack_pending` (the lane's
 * concurrency limit over every worker, which those unacked ones fill). A retry whose back-off has
 * ended is delivered to a pull in any case; nothing here says when that is.
 */
export function deliversNow(info: Pick<ConsumerInfo, 'num_pending' | 'num_ack_pending'> & { readonly config: Pick<ConsumerInfo['config'], 'max_ack_pending'> }): boolean {
  const max = info.config.max_ack_pending ?? -1;
  return info.num_pending > 0 && (max <= 0 || info.num_ack_pending < max);
}

/** Up to this many consumers are read one by one, in parallel; more, by one listing of the stream's consumers (256 a page). */
const LIST_FROM = 16;

/**
 * {@link deliversNow} for each of `durables`, consumers of `stream`. One missing (removed by the
 * server while idle) is absent from the answer: the caller falls back on what it knew.
 */
export async function lanesDeliveringNow(jsm: JetStreamManager, stream: string, durables: readonly string[]): Promise<Map<string, boolean>> {
  const answer = new Map<string, boolean>();
  if (durables.length < LIST_FROM) {
    await Promise.all(
      durables.map(async (durable) => {
        const info = await jsm.consumers.info(stream, durable).catch(() => undefined);
        if (info) answer.set(durable, deliversNow(info));
      }),
    );
    return answer;
  }
  const wanted = new Set(durables);
  for await (const info of jsm.consumers.list(stream)) if (wanted.has(info.name)) answer.set(info.name, deliversNow(info));
  return answer;
}
