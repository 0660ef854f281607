import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { readMountedSecret } from '../config/secrets.js';
import type { GatewayResolverExtras } from '../functions/index.js';
import { atMostEvery } from '../telemetry/at-most-every.js';

/** One warning a minute at most, however many invocations look a function up meanwhile. */
const LOOKUP_WARNING_INTERVAL_MS = 60_000;

/**
 * What a resolver backed by an OpenFaaS gateway (`gateway_invoke=true`) needs from the process:
 * the gateway's basic-auth credentials when `basic_auth` is on (OpenFaaS gives its queue-worker
 * the same `basic-auth-user` / `basic-auth-password` secrets), and a warning when a lookup fails,
 * since the function then runs without its annotations (its queue, retries and timeout).
 */
export async function gatewayLookups(config: Config, logger: Logger): Promise<GatewayResolverExtras> {
  if (config.functions.mode !== 'gateway') return {};
  const { basicAuth, secretMountPath } = config.security;
  const setting = 'basic_auth with gateway_invoke';
  const credentials = basicAuth
    ? { user: await readMountedSecret(secretMountPath, 'basic-auth-user', setting), password: await readMountedSecret(secretMountPath, 'basic-auth-password', setting) }
    : undefined;
  const onLookupFailed = atMostEvery(LOOKUP_WARNING_INTERVAL_MS, (skipped: number, ref: { name: string; namespace: string }, reason: string) =>
    logger.warn(
      { function: `${ref.name}.${ref.namespace}`, lookupsFailedMeanwhile: skipped },
      `could not read ${ref.name}.${ref.namespace} from the OpenFaaS gateway, so it runs without its annotations (queue, retries, timeout): ${reason}`,
    ),
  );
  return { credentials, onLookupFailed };
}
