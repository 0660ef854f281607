import { pino } from 'pino';
import t from 'tap';
import { request } from 'undici';
import { startGateway } from '../../../src/gateway/start.js';
import { connectQueue, NatsConnectError, type ConnectOptions } from '../../../src/nats/connection.js';
import { configFor, resolverFor, startStack } from '../../helpers/asyncfn.js';
import { startNatsServer, TLS_FIXTURES, tlsServerConfig } from '../../helpers/nats-server.js';

const silent = pino({ level: 'silent' });
const CLIENT_TLS = { caFile: TLS_FIXTURES.ca, certFile: TLS_FIXTURES.clientCert, keyFile: TLS_FIXTURES.clientKey };

async function failure(promise: Promise<unknown>): Promise<NatsConnectError> {
  const err = await promise.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  if (!(err instanceof NatsConnectError)) throw err;
  return err;
}

/** connectQueue with a short connect timeout: a refused client certificate shows up only as one. */
function connect(opts: Omit<ConnectOptions, 'name' | 'logger'>) {
  return connectQueue({ name: 'asyncfn-tls-test', logger: silent, connectTimeoutMs: 1_000, ...opts });
}

t.test('mutual TLS: a gateway and a worker with the CA and a client certificate complete an async invocation', async (t) => {
  const stack = await startStack(t, { natsConfig: tlsServerConfig({ verify: true }), config: { nats: { tls: CLIENT_TLS } } });
  const res = await request(`${stack.gateway.url}/async-function/work`, { method: 'POST', body: 'over mutual TLS', headers: { 'x-callback-url': stack.sink.url } });
  t.equal(res.statusCode, 202);
  await res.body.dump();
  const callback = await stack.sink.waitForCallId(String(res.headers['x-call-id']));
  t.equal(callback.body.toString(), 'over mutual TLS');

  const queue = await connect({ url: stack.nats.url, tls: CLIENT_TLS });
  t.teardown(() => queue.close());
  t.equal(queue.nc.info?.tls_required, true, 'the server required TLS');
  t.equal(queue.nc.info?.tls_verify, true, 'and verified the client certificate');
});

t.test('mutual TLS without a client certificate: the gateway does not start, and says it needs one', async (t) => {
  const nats = await startNatsServer(t, tlsServerConfig({ verify: true }));
  // The real startup path, with its default 5 s connect timeout: TLS 1.3 refuses the missing
  // certificate after the handshake, which nats.js only notices as a timeout.
  const err = await failure(startGateway(configFor(nats.url, { nats: { tls: { caFile: TLS_FIXTURES.ca } } }), { resolver: resolverFor({}), logger: silent }));
  t.equal(err.reason, 'tls');
  t.match(
    err.message,
    new RegExp(`^TLS to NATS at ${nats.url} failed: the server requires a client certificate: set nats_tls_cert_file and nats_tls_key_file \\(.*alert.*\\)$`),
  );
});

t.test('mutual TLS with a certificate the server does not accept for clients: named by its file', async (t) => {
  const nats = await startNatsServer(t, tlsServerConfig({ verify: true }));
  // The fixture server certificate is signed by the right CA but allowed for serverAuth only.
  const err = await failure(connect({ url: nats.url, tls: { caFile: TLS_FIXTURES.ca, certFile: TLS_FIXTURES.serverCert, keyFile: TLS_FIXTURES.serverKey } }));
  t.equal(err.reason, 'tls');
  t.match(err.message, `failed: the server refused the client certificate in nats_tls_cert_file ${TLS_FIXTURES.serverCert}`);
});

t.test("TLS without the CA that signed the server's certificate: not trusted, and the fix is named", async (t) => {
  const nats = await startNatsServer(t, tlsServerConfig());
  const err = await failure(connect({ url: nats.url }));
  t.equal(err.reason, 'tls');
  t.match(err.message, `TLS to NATS at ${nats.url} failed: the server's certificate is not signed by a CA this machine trusts; set nats_tls_ca_file`);

  const queue = await connect({ url: nats.url, tls: { caFile: TLS_FIXTURES.ca } });
  t.teardown(() => queue.close());
  t.equal(queue.isConnected(), true, 'server-side TLS alone needs only the CA');
});

t.test('TLS files set, but the server offers no TLS: refused rather than sent in the clear', async (t) => {
  const nats = await startNatsServer(t);
  const err = await failure(connect({ url: nats.url, tls: { caFile: TLS_FIXTURES.ca } }));
  t.equal(err.message, `TLS to NATS at ${nats.url} failed: the server does not offer TLS, but nats_tls_* files are set`);
  const viaScheme = await failure(connect({ url: nats.url.replace('nats://', 'tls://') }));
  t.match(viaScheme.message, /a tls:\/\/ URL asks for it$/);
});

t.test('a TLS file that is missing stops startup naming the setting and the file', async (t) => {
  const nats = await startNatsServer(t, tlsServerConfig());
  const missing = `${TLS_FIXTURES.ca}.missing`;
  const err = await connectQueue({ url: nats.url, tls: { caFile: missing }, name: 'x', logger: silent }).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  t.match(err?.message, `nats_tls_ca_file: secret file ${missing} does not exist`);
});
