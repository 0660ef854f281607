import { isIPv4, isIPv6 } from 'node:net';

/**
 * Where `asyncfn up` listens, and what follows from it for callbacks. Pure, so the decision is
 * unit-tested apart from the processes it configures.
 *
 * `asyncfn up` is for one developer's machine: it listens on loopback unless told otherwise, and
 * only then lets callbacks reach loopback receivers (`nc -l 8888`). Listening on a LAN address
 * while allowing loopback callbacks would let anyone on the LAN make the worker POST to this
 * machine's own loopback services.
 */

/**
 * Variable defaults of `asyncfn up` (below the config file and the environment): the gateway and
 * the worker's health server on 127.0.0.1, and the web console on. `asyncfn gateway` and `asyncfn worker` keep 0.0.0.0,
 * right in a container.
 */
export const UP_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({ gateway_host: '127.0.0.1', worker_host: '127.0.0.1', console: 'true' });

/** The variables `asyncfn up --host <addr>` sets: every listener up starts itself. */
export const UP_HOST_VARIABLES: readonly string[] = Object.freeze(['gateway_host', 'worker_host']);

/** Callback targets `asyncfn up` allows when callback_allow is empty and it listens on loopback. */
export const UP_CALLBACK_ALLOW: readonly string[] = Object.freeze(['127.0.0.0/8', '::1', 'localhost']);

/** Whether only this machine can connect to `host`: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** What `asyncfn up` does about callbacks, and why (for its log). */
export interface UpCallbackPolicy {
  /** The callback_allow the worker and gateway get. */
  readonly callbackAllow: readonly string[];
  /** Whether up added the loopback targets itself. */
  readonly loopbackAdded: boolean;
  /** One line for the log when the choice is worth a word; undefined otherwise. */
  readonly note?: string;
}

/**
 * Loopback callbacks are allowed by default only while the gateway, where callers name their
 * callback targets, listens on loopback. An explicit callback_allow is always kept as it is.
 */
export function upCallbackPolicy(gatewayHost: string, configured: readonly string[]): UpCallbackPolicy {
  if (configured.length > 0) return { callbackAllow: configured, loopbackAdded: false };
  if (isLoopbackHost(gatewayHost)) return { callbackAllow: UP_CALLBACK_ALLOW, loopbackAdded: true };
  return {
    callbackAllow: configured,
    loopbackAdded: false,
    note:
      `the gateway listens on ${gatewayHost}, which other machines may reach, so callbacks to loopback and private ` +
      'addresses are refused as in production; set callback_allow (e.g. 127.0.0.0/8) to allow some anyway',
  };
}

/**
 * The `gateway_public_url` of `asyncfn up`: the configured one, else its own gateway as a function
 * on this machine reaches it: `http://127.0.0.1:<port>` when the gateway listens on a wildcard
 * address (0.0.0.0, ::) or loopback, else on the address it listens on. `port` is the port it got
 * (gateway_port may be 0).
 */
export function upGatewayPublicUrl(configured: string | undefined, gatewayHost: string, port: number): string {
  if (configured !== undefined) return configured;
  const h = gatewayHost.trim().replace(/^\[(.*)\]$/, '$1');
  const wildcard = h === '0.0.0.0' || h === '::' || h === '';
  const host = wildcard || isLoopbackHost(h) ? '127.0.0.1' : isIPv6(h) ? `[${h}]` : h;
  return `http://${host}:${port}`;
}
