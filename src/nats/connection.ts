import { setTimeout as delay } from 'node:timers/promises';
import { connect, errors, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { readSecretFile } from '../config/secrets.js';
import { explainConnectError, natsSecurity, NatsConnectError, type NatsSecretValues, type NatsSecurity, type NatsTarget } from './nats-security.js';
import { probeTls } from './tls-probe.js';

export { NatsConnectError, type NatsTarget } from './nats-security.js';
export { redactUrl } from '../config/nats-url.js';

/** A NATS connection that reconnects forever and tells whether it is connected right now. */
export interface QueueConnection {
  readonly nc: NatsConnection;
  /** true while connected; the gateway answers 503 instead of publishing when false. */
  isConnected(): boolean;
  /**
   * Calls `listener` with each change of {@link isConnected} (false on a disconnect or the final
   * close, true on a reconnect); returns what stops it. A plain listener, so that this module and
   * the gateway need no RxJS (the worker's pull source makes its own stream of it, src/queue/pull.ts).
   */
  onConnectedChange(listener: (connected: boolean) => void): () => void;
  close(): Promise<void>;
}

export interface ConnectOptions extends NatsTarget {
  /** Connection name shown by `nats server report connections`. */
  name: string;
  logger: Logger;
  /** Delay between reconnect attempts in ms; default 500. */
  reconnectTimeWaitMs?: number;
  /** How long one connection attempt may take in ms; default 5000. */
  connectTimeoutMs?: number;
  /** Called on every reconnect (the `*_nats_reconnect_total` metrics). */
  onReconnect?: () => void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * Reads the secret files `target` names (once, now) and turns them into nats.js options.
 * @throws ConfigError naming a missing, empty or unusable file (never its content)
 */
export async function readNatsSecurity(target: NatsTarget): Promise<NatsSecurity> {
  const { auth = {}, tls = {} } = target;
  const read = (file: string | undefined, setting: string): Promise<string | undefined> =>
    file === undefined ? Promise.resolve(undefined) : readSecretFile(file, setting);
  const [creds, nkeySeed, token, password, ca, cert, key] = await Promise.all([
    read(auth.credsFile, 'nats_creds_file'),
    read(auth.nkeySeedFile, 'nats_nkey_seed_file'),
    read(auth.tokenFile, 'nats_token_file'),
    read(auth.passwordFile, 'nats_password_file'),
    read(tls.caFile, 'nats_tls_ca_file'),
    read(tls.certFile, 'nats_tls_cert_file'),
    read(tls.keyFile, 'nats_tls_key_file'),
  ]);
  const secrets: NatsSecretValues = { creds, nkeySeed, token, password, ca, cert, key };
  return natsSecurity(target, secrets);
}

/**
 * One attempt to connect. A failure becomes a NatsConnectError whose message names the problem
 * (credentials refused, TLS refused, server unreachable) and the URL with credentials masked.
 * `options` adds to (never replaces) the security options; they are never logged.
 */
export async function dialNats(security: NatsSecurity, options: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  const timeout = options.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
  try {
    return await connect({
      ...options,
      servers: security.servers,
      authenticator: security.authenticator,
      tls: security.tls,
      timeout,
      waitOnFirstConnect: false,
    });
  } catch (err) {
    const failure = explainConnectError(err, security);
    if (failure.reason !== 'unreachable' || !(err instanceof errors.TimeoutError)) throw failure;
    // A TLS refusal can look like a timeout (see tls-probe.ts): ask the servers directly.
    for (const server of security.servers) {
      const tlsError = await probeTls(server, security.tls, timeout);
      if (tlsError) throw explainConnectError(tlsError, security);
    }
    throw failure;
  }
}

/** Reads the secrets and connects once: for short-lived commands such as `asyncfn dlq`. */
export async function connectNats(target: NatsTarget, options: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  return dialNats(await readNatsSecurity(target), options);
}

/**
 * Connects for a long-running component. While the server cannot be reached it keeps trying
 * (a gateway may start before NATS); refused credentials or TLS stop startup at once with a
 * NatsConnectError. Once connected, nats.js reconnects forever.
 */
export async function connectQueue(opts: ConnectOptions): Promise<QueueConnection> {
  const security = await readNatsSecurity(opts);
  const reconnectTimeWait = opts.reconnectTimeWaitMs ?? 500;
  opts.logger.info({ url: security.redactedUrl, tls: security.tls !== undefined, identity: security.identity }, 'connecting to NATS');
  let nc: NatsConnection | undefined;
  for (let attempt = 1; nc === undefined; attempt++) {
    try {
      nc = await dialNats(security, {
        name: opts.name,
        timeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        maxReconnectAttempts: -1,
        reconnectTimeWait,
        pingInterval: 10_000,
        // nats.js otherwise builds an Error (a stack capture) for every request up front, just in case
        // it times out: ~20% of the gateway's CPU at full ingest. asyncfn wraps these errors anyway.
        noAsyncTraces: true,
      });
    } catch (err) {
      if (!(err instanceof NatsConnectError) || err.reason !== 'unreachable') throw err;
      // Start even when NATS is down: wait for it, saying so once, then quietly.
      if (attempt === 1) opts.logger.warn({ err: err.message }, 'NATS is not reachable yet; waiting for it');
      else opts.logger.debug({ err: err.message, attempt }, 'NATS still not reachable');
      await delay(reconnectTimeWait);
    }
  }
  return watch(nc, opts);
}

function watch(nc: NatsConnection, opts: ConnectOptions): QueueConnection {
  let connected = true;
  const listeners = new Set<(connected: boolean) => void>();
  const change = (up: boolean): void => {
    if (up === connected) return;
    connected = up;
    for (const listener of [...listeners]) listener(up);
  };
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          change(false);
          opts.logger.warn({ server: s.server }, 'disconnected from NATS');
          break;
        case 'reconnect':
          opts.onReconnect?.();
          change(true);
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
  void nc.closed().then((err) => {
    change(false);
    // nats.js gives up only on repeated authorization errors (credentials revoked or changed).
    if (err) opts.logger.error({ err }, 'NATS connection closed for good; restart to reconnect');
  });
  return {
    nc,
    isConnected: () => connected,
    onConnectedChange: (listener) => {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    close: async () => {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
