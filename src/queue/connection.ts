import { connect, type NatsConnection } from '@nats-io/transport-node';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { Logger } from 'pino';

/** A NATS connection that reconnects forever and tells whether it is connected right now. */
export interface QueueConnection {
  readonly nc: NatsConnection;
  /** true while connected; the gateway answers 503 instead of publishing when false. */
  readonly connected$: Observable<boolean>;
  isConnected(): boolean;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** One or more comma-separated server URLs. */
  url: string;
  /** Connection name shown by `nats server report connections`. */
  name: string;
  logger: Logger;
  /** Delay between reconnect attempts in ms; default 500. */
  reconnectTimeWaitMs?: number;
  /** Called on every reconnect (the `*_nats_reconnect_total` metrics). */
  onReconnect?: () => void;
}

export async function connectQueue(opts: ConnectOptions): Promise<QueueConnection> {
  opts.logger.info({ url: opts.url }, 'connecting to NATS');
  const nc = await connect({
    servers: opts.url.split(',').map((s) => s.trim()),
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: opts.reconnectTimeWaitMs ?? 500,
    // Start even when NATS is down: the gateway answers 503 and recovers by itself.
    waitOnFirstConnect: true,
    pingInterval: 10_000,
    // nats.js otherwise builds an Error (a stack capture) for every request up front, just in case
    // it times out: ~20% of the gateway's CPU at full ingest. asyncfn wraps these errors anyway.
    noAsyncTraces: true,
  });
  const connected$ = new BehaviorSubject(true);
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          connected$.next(false);
          opts.logger.warn({ server: s.server }, 'disconnected from NATS');
          break;
        case 'reconnect':
          opts.onReconnect?.();
          connected$.next(true);
          opts.logger.info({ server: s.server }, 'reconnected to NATS');
          break;
        case 'error':
          opts.logger.error({ err: s.error }, 'NATS connection error');
          break;
        default:
          break;
      }
    }
  })();
  void nc.closed().then(() => connected$.next(false));
  return {
    nc,
    connected$: connected$.asObservable(),
    isConnected: () => connected$.value,
    close: async () => {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
