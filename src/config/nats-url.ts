import { ConfigError } from '../errors.js';

/**
 * NATS_URL may carry credentials, as the Go client and the nats CLI accept them:
 * `nats://user:password@host:4222` (user and password) or `nats://token@host:4222` (a token).
 * nats.js v3 ignores them (and reads a numeric password as the port), so asyncfn takes them out
 * of the server list itself; everything logged or shown goes through `redactUrl` first.
 */

const SCHEME = /^\s*[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The comma-separated servers of a NATS_URL, untrimmed. A comma before a `scheme://` always
 * separates servers; a comma before the last '@' of a server is part of its credentials, so an
 * unescaped comma in a password does not cut it in two (and half of it out of redaction).
 */
export function splitServerList(url: string): string[] {
  return url.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i).flatMap((chunk) => {
    const at = chunk.lastIndexOf('@');
    if (at === -1) return chunk.split(',');
    const [host = '', ...more] = chunk.slice(at + 1).split(',');
    return [chunk.slice(0, at + 1) + host, ...more];
  });
}

/** One server; `userinfo` is whatever precedes the last '@' (host names cannot hold one). */
interface ServerParts {
  readonly scheme: string;
  readonly userinfo?: string;
  readonly hostPort: string;
}

function splitServer(server: string): ServerParts {
  const text = server.trim();
  const scheme = SCHEME.exec(text)?.[0] ?? '';
  const rest = text.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  return at === -1 ? { scheme, hostPort: rest } : { scheme, userinfo: rest.slice(0, at), hostPort: rest.slice(at + 1) };
}

/** Placeholder for a secret part of a URL, as Go's `url.URL.Redacted` writes it. */
const MASK = 'xxxxx';

/**
 * The URL (or comma-separated URLs) with passwords and tokens replaced by `xxxxx`, safe to log:
 * `nats://asyncfn:s3cret@h:4222` → `nats://asyncfn:xxxxx@h:4222`, `nats://tok@h` → `nats://xxxxx@h`.
 * Everything else is kept as it was written.
 */
export function redactUrl(url: string): string {
  return splitServerList(url)
    .map((server) => {
      const { userinfo } = splitServer(server);
      if (userinfo === undefined) return server;
      const colon = userinfo.indexOf(':');
      // Without a colon the userinfo is a token: all of it is secret.
      const shown = colon === -1 ? MASK : `${userinfo.slice(0, colon)}:${MASK}`;
      return server.replace(`${userinfo}@`, () => `${shown}@`);
    })
    .join(',');
}

/** The servers of a NATS_URL for nats.js: trimmed, without credentials. */
export function natsServers(url: string): string[] {
  return splitServerList(url)
    .filter((server) => server.trim() !== '')
    .map((server) => {
      const { scheme, hostPort } = splitServer(server);
      return `${scheme.trim()}${hostPort}`;
    });
}

/** True when some server of the list is `tls://`, which, as in the Go client, means TLS is required. */
export function requiresTls(url: string): boolean {
  return splitServerList(url).some((server) => splitServer(server).scheme.trim().toLowerCase() === 'tls://');
}

export type UrlCredential = { readonly kind: 'user'; readonly user: string; readonly password: string } | { readonly kind: 'token'; readonly token: string };

/**
 * The credentials NATS_URL carries, percent-decoded, or undefined. Several servers may repeat
 * them; different credentials on different servers are refused, since one connection presents
 * one identity. Error messages never repeat the credentials.
 */
export function urlCredential(url: string): UrlCredential | undefined {
  const infos = new Set(
    splitServerList(url)
      .map((server) => splitServer(server).userinfo)
      .filter((info): info is string => info !== undefined && info !== ''),
  );
  if (infos.size === 0) return undefined;
  if (infos.size > 1) throw new ConfigError([`NATS_URL: the servers in ${redactUrl(url)} carry different credentials; use the same on every server`]);
  const [info] = [...infos] as [string];
  try {
    const colon = info.indexOf(':');
    if (colon === -1) return { kind: 'token', token: decodeURIComponent(info) };
    return { kind: 'user', user: decodeURIComponent(info.slice(0, colon)), password: decodeURIComponent(info.slice(colon + 1)) };
  } catch (err) {
    throw new ConfigError([`NATS_URL: the credentials in ${redactUrl(url)} are not valid percent-encoding`], { cause: err });
  }
}
