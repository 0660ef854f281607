import { readFileSync } from 'node:fs';
import { createAccount, createUser, encodeUser, fmtCreds } from '@nats-io/jwt';
import { errors, nkeys } from '@nats-io/nats-core';
import t, { type Test } from 'tap';
import { ConfigError } from '../../../src/errors.js';
import { explainConnectError, natsSecurity, NatsConnectError, type NatsSecretValues, type NatsTarget } from '../../../src/nats/nats-security.js';
import { TLS_FIXTURES } from '../../helpers/nats-server.js';

const URL = 'nats://127.0.0.1:4222';
const TD = new TextDecoder();
const pem = (file: string): string => readFileSync(file, 'utf8').trim();

function build(target: Partial<NatsTarget>, secrets: NatsSecretValues = {}) {
  return natsSecurity({ url: URL, auth: {}, tls: {}, ...target }, secrets);
}

/** Asserts that `fn` throws a ConfigError whose message matches `pattern` and holds none of `secrets`. */
function throwsConfig(t: Test, fn: () => unknown, pattern: RegExp, secrets: string[] = []): void {
  const err = t.throws(fn) as Error;
  t.type(err, ConfigError);
  t.match(err.message, pattern);
  for (const secret of secrets) t.notOk(err.message.includes(secret), 'the message holds no secret');
}

t.test('no credentials and no TLS files: plain servers, nothing else', async (t) => {
  const security = build({ url: 'nats://a:4222, nats://b:4222' });
  t.same(security.servers, ['nats://a:4222', 'nats://b:4222']);
  t.equal(security.authenticator, undefined);
  t.equal(security.tls, undefined);
  t.equal(security.identity, undefined);
});

t.test('user and password', async (t) => {
  const security = build({ auth: { user: 'asyncfn', passwordFile: '/s/pw' } }, { password: 'hunter2' });
  t.same(security.authenticator!(undefined), { user: 'asyncfn', pass: 'hunter2' });
  t.equal(security.identity, 'user asyncfn');
});

t.test('token', async (t) => {
  const security = build({ auth: { tokenFile: '/s/token' } }, { token: 's3cret' });
  t.same(security.authenticator!(undefined), { auth_token: 's3cret' });
  t.equal(security.identity, 'the token in nats_token_file /s/token');
});

t.test('NKEY seed: signs the nonce with the user key', async (t) => {
  const user = nkeys.createUser();
  const seed = TD.decode(user.getSeed());
  const security = build({ auth: { nkeySeedFile: '/s/user.nk' } }, { nkeySeed: seed });
  const answer = security.authenticator!('nonce-1') as { nkey: string; sig: string };
  t.equal(answer.nkey, user.getPublicKey());
  t.ok(nkeys.fromPublic(answer.nkey).verify(new TextEncoder().encode('nonce-1'), nkeys.decode(answer.sig)), 'the signature verifies');
  t.equal(security.identity, `NKEY ${user.getPublicKey()} (nats_nkey_seed_file /s/user.nk)`);

  throwsConfig(
    t,
    () => build({ auth: { nkeySeedFile: '/s/bad.nk' } }, { nkeySeed: 'SUNOTASEED' }),
    /^invalid configuration:\n {2}- nats_nkey_seed_file: \/s\/bad.nk does not hold an NKEY seed$/,
    ['SUNOTASEED'],
  );
  const account = nkeys.createAccount();
  throwsConfig(t, () => build({ auth: { nkeySeedFile: '/s/acc.nk' } }, { nkeySeed: TD.decode(account.getSeed()) }), /holds a seed for A\w+, not a user seed/, [
    TD.decode(account.getSeed()),
  ]);
});

t.test('.creds file: presents the JWT and signs with its seed', async (t) => {
  const account = createAccount();
  const user = createUser();
  const jwt = await encodeUser('asyncfn', user, account);
  // readSecretFile trims: the trailing newline the parser wants is gone.
  const creds = TD.decode(fmtCreds(jwt, user)).trim();
  const security = build({ auth: { credsFile: '/s/asyncfn.creds' } }, { creds });
  const answer = security.authenticator!('n') as { jwt: string; nkey: string; sig: string };
  t.equal(answer.jwt, jwt);
  t.equal(answer.nkey, user.getPublicKey());
  t.equal(security.identity, `user ${user.getPublicKey()} (nats_creds_file /s/asyncfn.creds)`);

  throwsConfig(t, () => build({ auth: { credsFile: '/s/x.creds' } }, { creds: 'not a creds file' }), /nats_creds_file: \/s\/x.creds is not a NATS credentials file/, [
    'not a creds file',
  ]);
});

t.test('credentials in NATS_URL', async (t) => {
  const user = build({ url: 'nats://asyncfn:p%40ss@127.0.0.1:4222' });
  t.same(user.servers, ['nats://127.0.0.1:4222']);
  t.same(user.authenticator!(undefined), { user: 'asyncfn', pass: 'p@ss' });
  t.equal(user.identity, 'user asyncfn (from NATS_URL)');
  t.equal(user.redactedUrl, 'nats://asyncfn:xxxxx@127.0.0.1:4222');
  const token = build({ url: 'nats://s3cret@127.0.0.1:4222' });
  t.same(token.authenticator!(undefined), { auth_token: 's3cret' });
  t.equal(token.identity, 'the token in NATS_URL');
  throwsConfig(
    t,
    () => build({ url: 'nats://u:p@h:4222', auth: { tokenFile: '/s/t' } }, { token: 'zq9secret' }),
    /NATS_URL carries credentials and nats_token_file is set too/,
    ['zq9secret'],
  );
});

t.test('TLS: CA and client certificate from their files', async (t) => {
  const [ca, cert, key] = [pem(TLS_FIXTURES.ca), pem(TLS_FIXTURES.clientCert), pem(TLS_FIXTURES.clientKey)];
  const security = build({ tls: { caFile: '/s/ca.pem', certFile: '/s/cert.pem', keyFile: '/s/key.pem' } }, { ca, cert, key });
  t.same(security.tls, { ca, cert, key });
  t.same(build({ tls: { caFile: '/s/ca.pem' } }, { ca }).tls, { ca }, 'a CA alone: TLS with server verification only');
  t.same(build({ url: 'tls://127.0.0.1:4222' }).tls, {}, 'tls:// asks for TLS with the system CAs');

  const serverKey = pem(TLS_FIXTURES.serverKey);
  throwsConfig(
    t,
    () => build({ tls: { certFile: '/s/cert.pem', keyFile: '/s/other-key.pem' } }, { cert, key: serverKey }),
    /nats_tls_cert_file \/s\/cert.pem, nats_tls_key_file \/s\/other-key.pem: not usable for TLS \(key values mismatch\)/,
    [serverKey.split('\n')[1]!],
  );
  throwsConfig(t, () => build({ tls: { certFile: '/s/c', keyFile: '/s/k' } }, { cert: 'garbage', key: 'garbage' }), /not usable for TLS/);
});

t.test('explainConnectError names the problem and the masked URL, never a secret', async (t) => {
  const withUser = build({ auth: { user: 'asyncfn', passwordFile: '/s/pw' } }, { password: 'hunter2' });
  const denied = explainConnectError(new errors.AuthorizationError('Authorization Violation'), withUser);
  t.type(denied, NatsConnectError);
  t.equal(denied.code, 'ASYNCFN_ERR_NATS_CONNECT');
  t.equal(denied.reason, 'auth');
  t.equal(denied.message, 'NATS authorization failed for user asyncfn at nats://127.0.0.1:4222');

  const fromUrl = build({ url: 'nats://asyncfn:hunter2@127.0.0.1:4222' });
  const deniedUrl = explainConnectError(new errors.AuthorizationError('Authorization Violation'), fromUrl);
  t.equal(deniedUrl.message, 'NATS authorization failed for user asyncfn (from NATS_URL) at nats://asyncfn:xxxxx@127.0.0.1:4222');

  const none = explainConnectError(new errors.AuthorizationError('Authorization Violation'), build({}));
  t.match(none.message, /^NATS authorization failed at nats:\/\/127.0.0.1:4222: the server requires credentials and none are configured \(set nats_creds_file/);

  const expired = explainConnectError(new errors.UserAuthenticationExpiredError('User Authentication Expired'), withUser);
  t.equal(expired.message, 'NATS credentials expired for user asyncfn at nats://127.0.0.1:4222');

  const refused = explainConnectError(new errors.ConnectionError('connection refused'), withUser);
  t.equal(refused.reason, 'unreachable');
  t.equal(refused.message, 'NATS at nats://127.0.0.1:4222 is unreachable: connection refused');
  t.equal(explainConnectError(new errors.TimeoutError(), withUser).reason, 'unreachable');

  for (const err of [denied, deniedUrl, none, expired, refused]) t.notOk(err.message.includes('hunter2'));
});

/** A Node TLS error as the socket reports it. */
function tlsError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

t.test('explainConnectError tells TLS problems apart', async (t) => {
  const noFiles = build({});
  const withCa = build({ tls: { caFile: '/s/ca.pem' } }, { ca: pem(TLS_FIXTURES.ca) });
  const withCert = build(
    { tls: { caFile: '/s/ca.pem', certFile: '/s/cert.pem', keyFile: '/s/key.pem' } },
    { ca: pem(TLS_FIXTURES.ca), cert: pem(TLS_FIXTURES.clientCert), key: pem(TLS_FIXTURES.clientKey) },
  );
  const untrusted = tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate');
  t.equal(
    explainConnectError(untrusted, noFiles).message,
    "TLS to NATS at nats://127.0.0.1:4222 failed: the server's certificate is not signed by a CA this machine trusts; set nats_tls_ca_file to the CA that signed it (unable to verify the first certificate)",
  );
  t.match(
    explainConnectError(tlsError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'), withCa).message,
    /not signed by the CA in nats_tls_ca_file \/s\/ca.pem/,
  );
  t.match(explainConnectError(tlsError('CERT_HAS_EXPIRED', 'certificate has expired'), withCa).message, /certificate is not valid now \(certificate has expired\)/);
  t.match(explainConnectError(tlsError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), withCa).message, /is not for this host/);

  const alert = tlsError(
    'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
    '80DC2AF5017F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42',
  );
  const required = explainConnectError(alert, withCa);
  t.equal(required.reason, 'tls');
  t.equal(
    required.message,
    'TLS to NATS at nats://127.0.0.1:4222 failed: the server requires a client certificate: set nats_tls_cert_file and nats_tls_key_file (sslv3 alert bad certificate)',
  );
  t.match(explainConnectError(alert, withCert).message, /the server refused the client certificate in nats_tls_cert_file \/s\/cert.pem \(sslv3 alert bad certificate\)/);
  t.match(
    explainConnectError(tlsError('ERR_SSL_WRONG_VERSION_NUMBER', 'x:SSL routines:ssl3_get_record:wrong version number:y'), withCa).message,
    /TLS handshake failed \(wrong version number\)/,
  );
  t.match(
    explainConnectError(new errors.ConnectionError("server does not support 'tls'"), withCa).message,
    /the server does not offer TLS, but nats_tls_\* files are set/,
  );
  t.match(explainConnectError(new errors.ConnectionError("server does not support 'tls'"), build({ url: 'tls://127.0.0.1:4222' })).message, /a tls:\/\/ URL asks for it/);
});
