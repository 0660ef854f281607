import { parseCreds } from '@nats-io/jwt';
import { pino } from 'pino';
import t from 'tap';
import { request } from 'undici';
import { startGateway } from '../../../src/gateway/start.js';
import { NatsConnectError } from '../../../src/nats/connection.js';
import { configFor, resolverFor, startStack } from '../../helpers/asyncfn.js';
import { operatorMode, startNatsServer, writeSecretFiles } from '../../helpers/nats-server.js';

/**
 * Decentralized auth: operator, account and user JWTs made in the test, the server in operator
 * mode with a MEMORY resolver. JetStream works under it on nats-server 2.9.10 once the account
 * JWT grants JetStream limits, so the whole asyncfn path is tested, not a bare connect.
 */

t.test('.creds: a gateway and a worker with a user .creds file complete an async invocation on JetStream', async (t) => {
  const mode = await operatorMode();
  const secrets = await writeSecretFiles(t, { creds: mode.creds });
  const stack = await startStack(t, { natsConfig: mode.serverConfig, config: { nats: { auth: { credsFile: secrets.creds } } } });
  const res = await request(`${stack.gateway.url}/async-function/work`, { method: 'POST', body: 'with a JWT', headers: { 'x-callback-url': stack.sink.url } });
  t.equal(res.statusCode, 202, 'JetStream acknowledged the publish in the account');
  await res.body.dump();
  const callback = await stack.sink.waitForCallId(String(res.headers['x-call-id']));
  t.equal(callback.body.toString(), 'with a JWT');
});

t.test('.creds of a user the server does not know: refused, named by its public key and file', async (t) => {
  const mode = await operatorMode();
  const nats = await startNatsServer(t, mode.serverConfig);
  const secrets = await writeSecretFiles(t, { creds: mode.strangerCreds });
  const { key: seed, uc } = await parseCreds(new TextEncoder().encode(mode.strangerCreds));
  const err = await startGateway(configFor(nats.url, { nats: { auth: { credsFile: secrets.creds } } }), {
    resolver: resolverFor({}),
    logger: pino({ level: 'silent' }),
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, NatsConnectError);
  t.equal((err as Error).message, `NATS authorization failed for user ${uc.sub} (nats_creds_file ${secrets.creds}) at ${nats.url}`);
  t.notOk((err as Error).message.includes(seed), 'the seed is not in the message');
});
