import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import type { Test } from 'tap';
import { startLocalNats, type LocalNatsServer } from '../../src/nats/local-server.js';
import { REPO_ROOT } from './repo-root.js';

/**
 * A real nats-server with JetStream on a free loopback port and a temporary store, removed at
 * teardown. `extraConfig` is appended to the generated config: `max_payload: 65536`, or blocks
 * such as `tls { ... }` (see tlsServerConfig) and `authorization { ... }`.
 */
export async function startNatsServer(t: Test, extraConfig?: string): Promise<LocalNatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-nats-'));
  const server = await startLocalNats({ dir, extraConfig });
  t.teardown(async () => {
    await server.kill9();
    await rm(dir, { recursive: true, force: true });
  });
  return server;
}

const TLS_DIR = join(REPO_ROOT, 'test/fixtures/nats-tls');

/** Test-only PEM files (test/fixtures/nats-tls/README.md): a CA, a server cert for 127.0.0.1/localhost, a client cert. */
export const TLS_FIXTURES = {
  ca: join(TLS_DIR, 'ca.pem'),
  serverCert: join(TLS_DIR, 'server-cert.pem'),
  serverKey: join(TLS_DIR, 'server-key.pem'),
  clientCert: join(TLS_DIR, 'client-cert.pem'),
  clientKey: join(TLS_DIR, 'client-key.pem'),
} as const;

/**
 * A `tls { }` block for startNatsServer using the fixture server certificate. With `verify`
 * the server requires a client certificate signed by the fixture CA (mutual TLS).
 */
export function tlsServerConfig(opts: { verify?: boolean } = {}): string {
  return [
    'tls {',
    `  cert_file: "${TLS_FIXTURES.serverCert}"`,
    `  key_file: "${TLS_FIXTURES.serverKey}"`,
    `  ca_file: "${TLS_FIXTURES.ca}"`,
    `  verify: ${opts.verify === true}`,
    '  timeout: 2',
    '}',
  ].join('\n');
}

/** Writes each secret to its own file (mode 0600) in a temporary directory; returns name → path. */
export async function writeSecretFiles<K extends string>(t: Test, secrets: Record<K, string>): Promise<Record<K, string>> {
  const dir = await mkdtemp(join(tmpdir(), 'asyncfn-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const paths = {} as Record<K, string>;
  for (const [name, value] of Object.entries(secrets) as Array<[K, string]>) {
    paths[name] = join(dir, name);
    await writeFile(paths[name], value, { mode: 0o600 });
  }
  return paths;
}

/** Decentralized auth for one test: a server config in operator mode and a user's `.creds`. */
export interface OperatorMode {
  /** For startNatsServer: operator JWT, system account, MEMORY resolver preloaded with the accounts. */
  readonly serverConfig: string;
  /** The text of a `.creds` file for a user of the JetStream-enabled account. */
  readonly creds: string;
  /** The same for a user of an account the server does not know. */
  readonly strangerCreds: string;
}

/** Fresh operator, system account and application account (JetStream unlimited), with a user. */
export async function operatorMode(): Promise<OperatorMode> {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const user = createUser();
  // Every limit explicit: a missing one decodes as 0 on the server, e.g. no connections at all.
  const limits = {
    subs: -1,
    data: -1,
    payload: -1,
    imports: -1,
    exports: -1,
    wildcards: true,
    conn: -1,
    leaf: -1,
    mem_storage: -1,
    disk_storage: -1,
    streams: -1,
    consumer: -1,
  };
  const operatorJwt = await encodeOperator('asyncfn-test', operator, { system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount('SYS', system, {}, { signer: operator });
  const accountJwt = await encodeAccount('APP', account, { limits }, { signer: operator });
  const stranger = createUser();
  return {
    serverConfig: [
      `operator: ${operatorJwt}`,
      `system_account: ${system.getPublicKey()}`,
      'resolver: MEMORY',
      'resolver_preload: {',
      `  ${system.getPublicKey()}: ${systemJwt}`,
      `  ${account.getPublicKey()}: ${accountJwt}`,
      '}',
    ].join('\n'),
    creds: new TextDecoder().decode(fmtCreds(await encodeUser('asyncfn', user, account), user)),
    strangerCreds: new TextDecoder().decode(fmtCreds(await encodeUser('stranger', stranger, createAccount()), stranger)),
  };
}
