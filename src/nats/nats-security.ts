import { createSecureContext } from 'node:tls';
import {
  credsAuthenticator,
  errors,
  nkeyAuthenticator,
  nkeys,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type TlsOptions,
} from '@nats-io/nats-core';
import type { NatsAuthConfig, NatsTlsConfig } from '../config/index.js';
import { AsyncFnError, ConfigError } from '../errors.js';
import { natsServers, redactUrl, requiresTls, urlCredential } from '../config/nats-url.js';

/**
 * From NATS settings and the contents of their secret files to nats.js connection options, and
 * from a failed connect to an error that names the problem. Pure: connection.ts reads the files.
 * No secret reaches a message; identities are user names and public keys.
 */

/** Where asyncfn connects and which files prove who it is (config.nats, with the URL known). */
export interface NatsTarget {
  readonly url: string;
  readonly auth?: NatsAuthConfig;
  readonly tls?: NatsTlsConfig;
}

/** The contents of the secret files a NatsTarget names, trimmed; set exactly for the files it names. */
export interface NatsSecretValues {
  readonly creds?: string;
  readonly nkeySeed?: string;
  readonly token?: string;
  readonly password?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** The security half of nats.js's ConnectionOptions, plus what error messages need. */
export interface NatsSecurity {
  /** Server URLs without credentials. */
  readonly servers: string[];
  readonly authenticator?: Authenticator;
  /** Set when TLS is required: files configured or a tls:// URL. */
  readonly tls?: TlsOptions;
  /** Who asyncfn claims to be, e.g. "user asyncfn"; undefined without credentials. */
  readonly identity?: string;
  /** The URL list, credentials masked. */
  readonly redactedUrl: string;
  /** The TLS files, for hints in error messages. */
  readonly tlsFiles: NatsTlsConfig;
}

const TE = new TextEncoder();

export function natsSecurity(target: NatsTarget, secrets: NatsSecretValues): NatsSecurity {
  const auth = target.auth ?? {};
  const tlsFiles = target.tls ?? {};
  const { authenticator, identity } = credentials(target.url, auth, secrets);
  const tls = tlsOptions(target.url, tlsFiles, secrets);
  return {
    servers: natsServers(target.url),
    ...(authenticator && { authenticator }),
    ...(tls && { tls }),
    ...(identity !== undefined && { identity }),
    redactedUrl: redactUrl(target.url),
    tlsFiles,
  };
}

function credentials(url: string, auth: NatsAuthConfig, secrets: NatsSecretValues): { authenticator?: Authenticator; identity?: string } {
  const fromUrl = urlCredential(url);
  const configured = [
    auth.credsFile && 'nats_creds_file',
    auth.nkeySeedFile && 'nats_nkey_seed_file',
    auth.tokenFile && 'nats_token_file',
    auth.user && 'nats_user',
  ].filter(Boolean);
  if (fromUrl && configured.length > 0) {
    throw new ConfigError([`NATS_URL carries credentials and ${configured.join(', ')} is set too; use one of them`]);
  }
  if (fromUrl?.kind === 'user') return { authenticator: usernamePasswordAuthenticator(fromUrl.user, fromUrl.password), identity: `user ${fromUrl.user} (from NATS_URL)` };
  if (fromUrl?.kind === 'token') return { authenticator: tokenAuthenticator(fromUrl.token), identity: 'the token in NATS_URL' };
  if (auth.credsFile) {
    // The parser wants a newline after the seed block, which trimming may have taken away.
    const authenticator = credsAuthenticator(TE.encode(`${need(secrets.creds, 'creds')}\n`));
    let user: string;
    try {
      user = (authenticator(undefined) as { nkey: string }).nkey;
    } catch (err) {
      throw new ConfigError([`nats_creds_file: ${auth.credsFile} is not a NATS credentials file (a user JWT and an NKEY seed)`], { cause: err });
    }
    return { authenticator, identity: `user ${user} (nats_creds_file ${auth.credsFile})` };
  }
  if (auth.nkeySeedFile) {
    const seed = TE.encode(need(secrets.nkeySeed, 'nkeySeed'));
    let publicKey: string;
    try {
      publicKey = nkeys.fromSeed(seed).getPublicKey();
    } catch (err) {
      throw new ConfigError([`nats_nkey_seed_file: ${auth.nkeySeedFile} does not hold an NKEY seed`], { cause: err });
    }
    if (!publicKey.startsWith('U')) throw new ConfigError([`nats_nkey_seed_file: ${auth.nkeySeedFile} holds a seed for ${publicKey}, not a user seed (SU...)`]);
    return { authenticator: nkeyAuthenticator(seed), identity: `NKEY ${publicKey} (nats_nkey_seed_file ${auth.nkeySeedFile})` };
  }
  if (auth.tokenFile) return { authenticator: tokenAuthenticator(need(secrets.token, 'token')), identity: `the token in nats_token_file ${auth.tokenFile}` };
  if (auth.user) return { authenticator: usernamePasswordAuthenticator(auth.user, need(secrets.password, 'password')), identity: `user ${auth.user}` };
  return {};
}

function tlsOptions(url: string, files: NatsTlsConfig, secrets: NatsSecretValues): TlsOptions | undefined {
  const { ca, cert, key } = {
    ca: files.caFile ? need(secrets.ca, 'ca') : undefined,
    cert: files.certFile ? need(secrets.cert, 'cert') : undefined,
    key: files.keyFile ? need(secrets.key, 'key') : undefined,
  };
  if (ca === undefined && cert === undefined && key === undefined) return requiresTls(url) ? {} : undefined;
  // Node checks the PEMs and that the key fits the certificate here, before any connect.
  try {
    createSecureContext({ ca, cert, key });
  } catch (err) {
    const named = [
      files.caFile && `nats_tls_ca_file ${files.caFile}`,
      files.certFile && `nats_tls_cert_file ${files.certFile}`,
      files.keyFile && `nats_tls_key_file ${files.keyFile}`,
    ].filter(Boolean);
    throw new ConfigError([`${named.join(', ')}: not usable for TLS (${opensslReason(err)})`], { cause: err });
  }
  return { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) };
}

/** A secret that connection.ts was told to read; its absence here is a bug, not a config problem. */
function need(value: string | undefined, what: keyof NatsSecretValues): string {
  if (value === undefined) throw new Error(`natsSecurity: the ${what} secret was not read`);
  return value;
}

/** Why connecting to NATS failed: credentials refused, TLS refused, or the server could not be reached. */
export type NatsConnectFailure = 'auth' | 'tls' | 'unreachable';

/** Connecting to NATS failed; the message names the problem and the (redacted) URL, never a secret. */
export class NatsConnectError extends AsyncFnError<'ASYNCFN_ERR_NATS_CONNECT'> {
  constructor(
    message: string,
    /** Only 'unreachable' is worth waiting out; the others need a change of configuration. */
    readonly reason: NatsConnectFailure,
    opts?: ErrorOptions,
  ) {
    super('ASYNCFN_ERR_NATS_CONNECT', [message], opts);
  }
}

/** Server certificate verification failures (Node's codes from OpenSSL's X509_V_ERR_*). */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
]);
const NOT_VALID_NOW = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED']);
/** TLS alerts by which a server refuses the client's certificate (or its absence). */
const CLIENT_CERT_REFUSED =
  /ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED|DECRYPT_ERROR)$/;

/** OpenSSL's reason ("sslv3 alert bad certificate") out of its long error string. */
function opensslReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return / routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code ?? (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The failure of `connect()` (or of the TLS probe after a timeout) as an error that names its cause. */
export function explainConnectError(err: unknown, security: NatsSecurity): NatsConnectError {
  const at = security.redactedUrl;
  const options = { cause: err };
  if (err instanceof errors.UserAuthenticationExpiredError) {
    return new NatsConnectError(`NATS credentials expired for ${security.identity ?? 'the configured credentials'} at ${at}`, 'auth', options);
  }
  if (err instanceof errors.AuthorizationError) {
    if (security.identity === undefined) {
      return new NatsConnectError(
        `NATS authorization failed at ${at}: the server requires credentials and none are configured ` +
          '(set nats_creds_file, nats_nkey_seed_file, nats_token_file, or nats_user with nats_password_file)',
        'auth',
        options,
      );
    }
    return new NatsConnectError(`NATS authorization failed for ${security.identity} at ${at}`, 'auth', options);
  }
  const tls = tlsProblem(err, security);
  if (tls !== undefined) return new NatsConnectError(`TLS to NATS at ${at} failed: ${tls}`, 'tls', options);
  const message = err instanceof Error ? err.message : String(err);
  return new NatsConnectError(`NATS at ${at} is unreachable: ${message}`, 'unreachable', options);
}

function tlsProblem(err: unknown, security: NatsSecurity): string | undefined {
  const { caFile, certFile } = security.tlsFiles;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof errors.ConnectionError && message.includes("does not support 'tls'")) {
    return `the server does not offer TLS, but ${caFile || certFile ? 'nats_tls_* files are set' : 'a tls:// URL asks for it'}`;
  }
  const code = codeOf(err);
  if (code === undefined) return undefined;
  if (UNTRUSTED.has(code)) {
    const trust = caFile ? `the CA in nats_tls_ca_file ${caFile}` : 'a CA this machine trusts; set nats_tls_ca_file to the CA that signed it';
    return `the server's certificate is not signed by ${trust} (${message})`;
  }
  if (NOT_VALID_NOW.has(code)) return `the server's certificate is not valid now (${message})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the server's certificate is not for this host (${message})`;
  if (CLIENT_CERT_REFUSED.test(code)) {
    const reason = opensslReason(err);
    return certFile
      ? `the server refused the client certificate in nats_tls_cert_file ${certFile} (${reason})`
      : `the server requires a client certificate: set nats_tls_cert_file and nats_tls_key_file (${reason})`;
  }
  if (/^ERR_(SSL|TLS|OSSL)_/.test(code)) return `TLS handshake failed (${opensslReason(err)})`;
  return undefined;
}
