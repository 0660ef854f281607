import { rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Config } from '../config/index.js';
import { createResolver, type FunctionResolver } from '../functions/index.js';
import { staticResolver } from '../functions/static-file.js';
import { startLocalNats, type LocalNatsServer } from '../nats/local-server.js';
import { startSampleFunctions } from '../samples/index.js';
import type { Logger } from '../telemetry/logger.js';
import { startGateway } from '../gateway/start.js';
import { upCallbackPolicy, upGatewayPublicUrl } from './up-binding.js';
import { DEFAULT_DATA_DIR, NATS_DIR, NATS_URL_FILE } from './up-data-dir.js';
import { acquireUpLock } from './up-lock.js';
import { startWorker } from '../worker/index.js';

export { DEFAULT_DATA_DIR, readLocalNatsUrl } from './up-data-dir.js';

export interface UpOptions {
  /** Where the local nats-server keeps its JetStream store; default `.asyncfn` in the working directory. */
  readonly dataDir?: string;
}

/**
 * Everything on one machine for development: a local nats-server with JetStream (unless NATS_URL
 * is set), the sample functions, the gateway and one worker, all stopped together.
 *
 * `config` should be loaded with UP_DEFAULTS (src/cli/up-binding.ts), so that the gateway and the
 * worker's health server listen on 127.0.0.1 unless gateway_host / worker_host / --host say
 * otherwise; nats-server and the sample functions always listen on 127.0.0.1. Loopback callbacks
 * are allowed only while the gateway listens on loopback (upCallbackPolicy).
 */
export async function runUp(config: Config, logger: Logger, opts: UpOptions = {}): Promise<{ close: () => Promise<void> }> {
  const stops: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    let natsUrl = config.nats.url;
    if (!natsUrl) {
      const dataDir = resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
      // One `up` per data directory: a second one refuses (UpLockedError) instead of starting a
      // second nats-server on the same store. Released last, after the server has stopped.
      const lock = await acquireUpLock(dataDir, logger);
      stops.push(() => lock.release());
      const nats: LocalNatsServer = await startLocalNats({ dir: join(dataDir, NATS_DIR) });
      const urlFile = join(dataDir, NATS_URL_FILE);
      stops.push(async () => {
        await rm(urlFile, { force: true });
        await nats.stop();
      });
      await lock.recordNats({ pid: nats.pid, url: nats.url });
      await writeFile(urlFile, `${nats.url}\n`);
      natsUrl = nats.url;
      logger.info({ url: nats.url, storeDir: nats.storeDir, natsPid: nats.pid }, 'started local nats-server with JetStream');
    }
    const samples = await startSampleFunctions({ host: '127.0.0.1', port: 0 });
    stops.push(() => samples.close());
    logger.info({ functions: Object.keys(samples.functions), url: samples.url }, 'sample functions running');

    const resolver: FunctionResolver =
      config.functions.mode === 'file' ? await createResolver(config.functions) : staticResolver(samples.functions, config.functions.defaultNamespace);
    const callbacks = upCallbackPolicy(config.gateway.host, config.security.callbackAllow);
    if (callbacks.note !== undefined) logger.warn({ gatewayHost: config.gateway.host }, callbacks.note);
    else if (callbacks.loopbackAdded)
      logger.info({ callbackAllow: callbacks.callbackAllow }, 'callbacks to this machine are allowed: the gateway listens on loopback only');
    const upConfig: Config = Object.freeze({
      ...config,
      nats: Object.freeze({ ...config.nats, url: natsUrl }),
      security: Object.freeze({ ...config.security, callbackAllow: callbacks.callbackAllow }),
    });

    // The worker starts first (the gateway's "listening" says everything is up), but its progress
    // URLs point at the port the gateway gets afterwards (gateway_port may be 0): read when used.
    let gatewayPublicUrl = config.worker.gatewayPublicUrl;
    const worker = await startWorker(upConfig, { resolver, logger, gatewayPublicUrl: () => gatewayPublicUrl });
    stops.push(() => worker.close());
    const gateway = await startGateway(upConfig, { resolver, logger });
    stops.push(() => gateway.close());
    gatewayPublicUrl = upGatewayPublicUrl(config.worker.gatewayPublicUrl, config.gateway.host, Number(new URL(gateway.url).port) || 80);
    return { close };
  } catch (err) {
    await close();
    throw err;
  }
}
